package client

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/cosmos/cosmos-sdk/client/grpc/cmtservice"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// liveNode answers one query as a node would.
type liveNode struct {
	cmtservice.UnimplementedServiceServer
}

func (*liveNode) GetNodeInfo(context.Context, *cmtservice.GetNodeInfoRequest) (*cmtservice.GetNodeInfoResponse, error) {
	return &cmtservice.GetNodeInfoResponse{}, nil
}

// TestDialUsesTheNextNode: with the first gRPC node down, queries reach
// the second; when that one goes down too and the first comes back, they
// reach the first.
func TestDialUsesTheNextNode(t *testing.T) {
	serve := func(addr string) (*grpc.Server, string) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		srv := grpc.NewServer()
		cmtservice.RegisterServiceServer(srv, &liveNode{})
		go func() { _ = srv.Serve(ln) }()
		return srv, ln.Addr().String()
	}
	// A port nothing listens on (taken, then released).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	first := ln.Addr().String()
	ln.Close()
	second, secondAddr := serve("127.0.0.1:0")

	c, err := Dial(Config{GRPC: first + "," + secondAddr, ChainID: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ask := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := c.Comet.GetNodeInfo(ctx, &cmtservice.GetNodeInfoRequest{}, grpc.WaitForReady(true))
		return err
	}
	if err := ask(); err != nil {
		t.Fatalf("with the first node down: %v", err)
	}
	// The second goes down, the first comes up.
	revived, _ := serve(first)
	defer revived.Stop()
	second.Stop()
	if err := ask(); err != nil {
		t.Fatalf("after the second node went down: %v (%s)", err, status.Code(err))
	}
}
