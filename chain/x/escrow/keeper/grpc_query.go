package keeper

import (
	"context"

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

func (q queryServer) ProofTask(ctx context.Context, req *types.QueryProofTaskRequest) (*types.QueryProofTaskResponse, error) {
	if req == nil {
		return nil, status.Error(codes.InvalidArgument, "empty request")
	}
	l, err := q.getLease(ctx, req.LeaseId)
	if err != nil {
		return nil, status.Error(codes.NotFound, err.Error())
	}
	if req.Epoch >= l.EpochsTotal {
		return nil, status.Errorf(codes.InvalidArgument, "lease %d has %d epochs", l.Id, l.EpochsTotal)
	}
	params, err := q.Keeper.Params.Get(ctx)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	start, end, deadline := epochBounds(l, req.Epoch)
	t, err := q.proofTask(ctx, l, req.Epoch, params)
	if err != nil {
		// Before the epoch's start block is committed its seed does not
		// exist yet: say so rather than failing.
		return nil, status.Errorf(codes.FailedPrecondition, "%v (epoch starts after block %d)", err, start)
	}
	return &types.QueryProofTaskResponse{
		Seed: t.seed[:], Difficulty: t.target.Difficulty, Required: t.target.Required,
		StartHeight: start, EndHeight: end, DeadlineHeight: deadline, Poc: params.Poc,
	}, nil
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
