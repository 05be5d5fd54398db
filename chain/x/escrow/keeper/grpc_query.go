package keeper

import (
	"context"
	"errors"

	"cosmossdk.io/collections"
	"cosmossdk.io/math"
	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/cosmos/cosmos-sdk/types/query"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/highway-compute/highway/chain/x/escrow/types"
)

type queryServer struct {
	Keeper
}

// NewQueryServerImpl returns the Query service over k.
func NewQueryServerImpl(k Keeper) types.QueryServer {
	return queryServer{Keeper: k}
}

var _ types.QueryServer = queryServer{}

func (q queryServer) Params(ctx context.Context, _ *types.QueryParamsRequest) (*types.QueryParamsResponse, error) {
	p, err := q.Keeper.Params.Get(ctx)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &types.QueryParamsResponse{Params: p}, nil
}

func (q queryServer) Lease(ctx context.Context, req *types.QueryLeaseRequest) (*types.QueryLeaseResponse, error) {
	if req == nil {
		return nil, status.Error(codes.InvalidArgument, "empty request")
	}
	l, err := q.getLease(ctx, req.Id)
	if err != nil {
		return nil, status.Error(codes.NotFound, err.Error())
	}
	return &types.QueryLeaseResponse{Lease: l}, nil
}

func (q queryServer) LeasesByBuyer(ctx context.Context, req *types.QueryLeasesByBuyerRequest) (*types.QueryLeasesResponse, error) {
	if req == nil {
		return nil, status.Error(codes.InvalidArgument, "empty request")
	}
	return q.leasesBy(ctx, q.ByBuyer, req.Buyer, req.Pagination)
}

func (q queryServer) LeasesByProvider(ctx context.Context, req *types.QueryLeasesByProviderRequest) (*types.QueryLeasesResponse, error) {
	if req == nil {
		return nil, status.Error(codes.InvalidArgument, "empty request")
	}
	return q.leasesBy(ctx, q.ByProvider, req.Provider, req.Pagination)
}

func (q queryServer) leasesBy(ctx context.Context, idx collections.KeySet[collections.Pair[sdk.AccAddress, uint64]], addr string, page *query.PageRequest) (*types.QueryLeasesResponse, error) {
	a, err := sdk.AccAddressFromBech32(addr)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "address: %v", err)
	}
	leases, pageRes, err := query.CollectionPaginate(ctx, idx, page,
		func(k collections.Pair[sdk.AccAddress, uint64], _ collections.NoValue) (types.Lease, error) {
			return q.Leases.Get(ctx, k.K2())
		},
		query.WithCollectionPaginationPairPrefix[sdk.AccAddress, uint64](a),
	)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &types.QueryLeasesResponse{Leases: leases, Pagination: pageRes}, nil
}

func (q queryServer) Epochs(ctx context.Context, req *types.QueryEpochsRequest) (*types.QueryEpochsResponse, error) {
	if req == nil {
		return nil, status.Error(codes.InvalidArgument, "empty request")
	}
	if _, err := q.getLease(ctx, req.LeaseId); err != nil {
		return nil, status.Error(codes.NotFound, err.Error())
	}
	recs, pageRes, err := query.CollectionPaginate(ctx, q.Keeper.Epochs, req.Pagination,
		func(_ collections.Pair[uint64, uint64], r types.EpochRecord) (types.EpochRecord, error) {
			return r, nil
		},
		query.WithCollectionPaginationPairPrefix[uint64, uint64](req.LeaseId),
	)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &types.QueryEpochsResponse{Epochs: recs, Pagination: pageRes}, nil
}

// leaseEpoch loads a lease for a query about one of its epochs.
func (q queryServer) leaseEpoch(ctx context.Context, leaseID, epoch uint64) (types.Lease, error) {
	l, err := q.getLease(ctx, leaseID)
	if err != nil {
		return l, status.Error(codes.NotFound, err.Error())
	}
	if epoch >= l.EpochsTotal {
		return l, status.Errorf(codes.InvalidArgument, "lease %d has %d epochs", l.Id, l.EpochsTotal)
	}
	return l, nil
}

func (q queryServer) ProofTask(ctx context.Context, req *types.QueryProofTaskRequest) (*types.QueryProofTaskResponse, error) {
	if req == nil {
		return nil, status.Error(codes.InvalidArgument, "empty request")
	}
	l, err := q.leaseEpoch(ctx, req.LeaseId, req.Epoch)
	if err != nil {
		return nil, err
	}
	start, end, settle := epochBounds(l, req.Epoch)
	t, err := q.proofTask(ctx, l, req.Epoch)
	if err != nil {
		// Before the epoch's start block is committed its seed does not
		// exist yet: say so rather than failing.
		return nil, status.Errorf(codes.FailedPrecondition, "%v (epoch starts after block %d)", err, start)
	}
	// The window opens with block start + 1: a query at that height or
	// later finds its time; an earlier one reports it unknown (0).
	win, err := q.proofWindow(ctx, l, req.Epoch, sdk.UnwrapSDKContext(ctx).BlockHeight())
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &types.QueryProofTaskResponse{
		Seed: t.seed[:], Difficulty: t.target.Difficulty, Required: t.target.Required,
		StartHeight: start, EndHeight: end, DeadlineHeight: settle, Poc: t.poc,
		WindowOpenMs: win.open, WindowCloseMs: win.close, WorkSeconds: l.ProofWorkSeconds, GraceMs: l.ProofGraceMs,
	}, nil
}

func (q queryServer) Epoch(ctx context.Context, req *types.QueryEpochRequest) (*types.QueryEpochResponse, error) {
	if req == nil {
		return nil, status.Error(codes.InvalidArgument, "empty request")
	}
	if _, err := q.leaseEpoch(ctx, req.LeaseId, req.Epoch); err != nil {
		return nil, err
	}
	key := collections.Join(req.LeaseId, req.Epoch)
	res := &types.QueryEpochResponse{}
	rec, err := q.Keeper.Epochs.Get(ctx, key)
	switch {
	case err == nil:
		res.Record = &rec
	case !errors.Is(err, collections.ErrNotFound):
		return nil, status.Error(codes.Internal, err.Error())
	}
	pending, err := q.PendingProofs.Get(ctx, key)
	switch {
	case err == nil:
		res.Pending = &pending
	case !errors.Is(err, collections.ErrNotFound):
		return nil, status.Error(codes.Internal, err.Error())
	}
	return res, nil
}

func (q queryServer) EscrowTotals(ctx context.Context, _ *types.QueryEscrowTotalsRequest) (*types.QueryEscrowTotalsResponse, error) {
	params, err := q.Keeper.Params.Get(ctx)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	totals, err := q.Keeper.EscrowTotals(ctx, nil)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	res := &types.QueryEscrowTotalsResponse{Remaining: math.ZeroInt(), Pending: math.ZeroInt(), Frozen: math.ZeroInt()}
	if t := totals[params.Denom]; t != nil {
		res.Remaining, res.Pending, res.Frozen, res.ActiveLeases = t.Remaining, t.Pending, t.Frozen, t.Active
	}
	res.ModuleBalance = q.moduleBalance(ctx, params.Denom)
	return res, nil
}
