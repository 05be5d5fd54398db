// Package protocol is the wire protocol between provider-agent and the
// marketplace: the JSON types of every agent API call, their Validate
// methods, request signing (Sign, Signer) and its server-side check
// (Verifier, NonceStore), and the error vocabulary both sides share.
//
// Both sides import this package, so it must stay small and pure Go: only
// the standard library, no cgo, no NVML, no web framework. The marketplace's
// gin handlers call Verifier.Verify on the *http.Request and then one of the
// Decode functions on the returned body; nothing is applied unless both
// succeed.
//
// Routes live under Prefix (/api/agent/v1). Register is authenticated by the
// one-time enrollment token in its body; every other request is signed with
// the agent's ed25519 key over a canonical string (see CanonicalString).
package protocol
