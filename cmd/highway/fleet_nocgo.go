//go:build !cgo

package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"

	chainclient "github.com/highway-compute/highway/chain/client"
	"github.com/highway-compute/highway/provider-agent/runner"
)

// Without cgo there are no simulated GPUs: go-nvml, mock devices
// included, is a cgo package. The marketplace binary is built this way
// (the Dockerfile, make build), so it stays pure Go and links no NVML;
// `highway dev` then runs the market without its demo fleet.

// errNoFleet says why and what to do.
var errNoFleet = errors.New("the demo fleet's simulated GPUs need cgo (go-nvml): build highway with CGO_ENABLED=1 and a C compiler, or run highway dev --fleet 0")

// fleetAgent has the cgo build's configuration; start refuses.
type fleetAgent struct {
	ServerURL   string
	Token       string
	StateDir    string
	Profile     string
	Seed        string
	RTT         map[string]int64
	ProviderKey *secp256k1.PrivKey
	Chain       *chainclient.Client
	Interval    time.Duration
	Logger      *slog.Logger
	Containers  *runner.Docker
}

func (fleetAgent) start(context.Context) (func(), error) { return nil, errNoFleet }
