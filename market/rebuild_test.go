package market

// Rebuild replays a command log into a fresh engine, as the broker does at
// start (from its snapshot and log); the tests use it to check that a
// replay reproduces the engine. Commands that failed when first applied fail again the
// same way and are skipped, exactly as they were.
func Rebuild(cfg Config, log []Command) (*Engine, error) {
	e, err := NewEngine(cfg)
	if err != nil {
		return nil, err
	}
	for i := range log {
		_, _ = e.Apply(&log[i])
	}
	return e, nil
}
