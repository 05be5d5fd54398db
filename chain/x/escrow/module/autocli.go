package module

import (
	autocliv1 "cosmossdk.io/api/cosmos/autocli/v1"

	escrowv1 "github.com/highway-compute/highway/chain/api/highway/escrow/v1"
)

// Service names come from the pulsar descriptors, which also registers
// them with protoregistry for autocli and x/tx signing.
var (
	msgService   = string(escrowv1.File_highway_escrow_v1_tx_proto.Services().Get(0).FullName())
	queryService = string(escrowv1.File_highway_escrow_v1_query_proto.Services().Get(0).FullName())
)

// AutoCLIOptions gives every escrow message and query a CLI command.
func (am AppModule) AutoCLIOptions() *autocliv1.ModuleOptions {
	return &autocliv1.ModuleOptions{
		Query: &autocliv1.ServiceCommandDescriptor{
			Service: queryService,
			RpcCommandOptions: []*autocliv1.RpcCommandOptions{
				{RpcMethod: "Params", Use: "params", Short: "Show the escrow parameters"},
				{RpcMethod: "Lease", Use: "lease [id]", Short: "Show a lease", PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "id"}}},
				{RpcMethod: "LeasesByBuyer", Use: "leases-by-buyer [buyer]", Short: "List a buyer's leases", PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "buyer"}}},
				{RpcMethod: "LeasesByProvider", Use: "leases-by-provider [provider]", Short: "List a provider's leases", PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "provider"}}},
				{RpcMethod: "Epochs", Use: "epochs [lease-id]", Short: "List a lease's settled epochs", PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "lease_id"}}},
				{RpcMethod: "Epoch", Use: "epoch [lease-id] [epoch]", Short: "Show an epoch's verdict, or its proof while it waits to be judged", PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "lease_id"}, {ProtoField: "epoch"}}},
				{RpcMethod: "ProofTask", Use: "proof-task [lease-id] [epoch]", Short: "Show what an epoch must prove (seed, target, window)", PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "lease_id"}, {ProtoField: "epoch"}}},
				{RpcMethod: "EscrowTotals", Use: "totals", Short: "Show escrow held, by bucket, and the module balance"},
			},
		},
		Tx: &autocliv1.ServiceCommandDescriptor{
			Service: msgService,
			RpcCommandOptions: []*autocliv1.RpcCommandOptions{
				{RpcMethod: "CreateLease", Use: "create-lease [quote-json]", Short: "Escrow payment under a provider's signed quote (JSON)", PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "quote"}}},
				{RpcMethod: "SubmitProof", Use: "submit-proof [lease-id] [epoch] [proof-hex]", Short: "Submit an epoch's one Proof-of-Compute (judged a few blocks later)", PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "lease_id"}, {ProtoField: "epoch"}, {ProtoField: "proof"}}},
				{RpcMethod: "ExtendLease", Use: "extend-lease [lease-id] [quote-json]", Short: "Add epochs to a running lease under the provider's signed extension quote (JSON)", PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "lease_id"}, {ProtoField: "quote"}}},
				{RpcMethod: "CloseLease", Use: "close-lease [lease-id]", Short: "End a lease; unearned escrow returns to the buyer", PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "lease_id"}}},
				{RpcMethod: "OpenDispute", Use: "open-dispute [lease-id] [reason]", Short: "Freeze a lease's escrow pending arbitration", PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "lease_id"}, {ProtoField: "reason"}}},
				{RpcMethod: "ResolveDispute", Use: "resolve-dispute [lease-id] [buyer-bps]", Short: "Split a disputed lease's frozen escrow (arbiter only)", PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "lease_id"}, {ProtoField: "buyer_bps"}}},
				// Only governance may change params: the command drafts a proposal.
				{RpcMethod: "UpdateParams", Use: "update-params-proposal [params-json]", Short: "Submit a governance proposal to replace the escrow params", PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "params"}}, GovProposal: true},
			},
		},
	}
}
