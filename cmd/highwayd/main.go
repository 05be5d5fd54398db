// Command highwayd is the Highway chain node: a Cosmos SDK application
// with the escrow module that holds lease payments until each epoch's
// Proof-of-Compute clears. See docs/chain.md.
package main

import (
	"fmt"
	"os"

	svrcmd "github.com/cosmos/cosmos-sdk/server/cmd"
)

func main() {
	root := NewRootCmd()
	if err := svrcmd.Execute(root, "HIGHWAYD", DefaultNodeHome()); err != nil {
		fmt.Fprintln(root.ErrOrStderr(), err)
		os.Exit(1)
	}
}
