// Package static holds the CSS, images and scripts, embedded in the binary
// and served under content-hashed names (app.3f9a1c2b.css) so they can be
// cached for a year: a changed file gets a new name, so no one sees a stale one.
package static

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"path"
	"strings"
)

//go:embed css img js vendor
var files embed.FS

// Asset is one embedded file.
type Asset struct {
	Name   string // original path, e.g. css/app.css
	Hashed string // served path, e.g. css/app.3f9a1c2b.css
	Body   []byte
	ETag   string
}

var (
	byOriginal = map[string]*Asset{}
	byHashed   = map[string]*Asset{}
)

func init() {
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		h := hex.EncodeToString(sum[:4])
		ext := path.Ext(p)
		a := &Asset{Name: p, Hashed: strings.TrimSuffix(p, ext) + "." + h + ext, Body: body, ETag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		byOriginal[p] = a
		byHashed[a.Hashed] = a
		return nil
	})
	if err != nil {
		panic("static: embedded assets unreadable: " + err.Error()) // build-time content; cannot fail at run time
	}
}

// Path returns the URL of the asset named name (e.g. "css/app.css"). An
// unknown name returns the unhashed path, which 404s visibly in development.
func Path(name string) string {
	if a, ok := byOriginal[name]; ok {
		return "/static/" + a.Hashed
	}
	return "/static/" + name
}

// Lookup finds an asset by its hashed name (the path after /static/).
func Lookup(hashed string) (*Asset, bool) {
	a, ok := byHashed[hashed]
	return a, ok
}
