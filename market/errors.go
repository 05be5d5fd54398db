package market

import highway "github.com/highway-compute/highway"

// Every error Apply returns is one of these sentinels (compare with
// errors.Is or ==), and each is a *highway.Error, so the broker can hand it
// to the API unchanged: the code picks the HTTP status, Field names the
// offending input. An error always means the engine is exactly as it was
// before the command: handlers check everything before they mutate.
var (
	// ErrBadConfig: the Config given to NewEngine is unusable.
	ErrBadConfig = &highway.Error{Code: highway.EINVALID, Message: "invalid market configuration"}
	// ErrBadKind: the command kind is not one this engine knows.
	ErrBadKind = &highway.Error{Code: highway.EINVALID, Field: "kind", Message: "unknown command kind"}
	// ErrBadTime: Now is negative or beyond MaxTime.
	ErrBadTime = &highway.Error{Code: highway.EINVALID, Field: "now", Message: "time out of range"}
	// ErrTimeWentBack: Now is earlier than a command already applied; the
	// log is ordered and time never runs backwards in it.
	ErrTimeWentBack = &highway.Error{Code: highway.ECONFLICT, Field: "now", Message: "time earlier than the last command"}
	// ErrBadID: an id is empty or longer than MaxIDLen.
	ErrBadID = &highway.Error{Code: highway.EINVALID, Field: "id", Message: "id empty or too long"}
	// ErrBadCount: a GPU count is zero, negative or above MaxGPUs.
	ErrBadCount = &highway.Error{Code: highway.EINVALID, Field: "gpus", Message: "GPU count out of range"}
	// ErrBadPrice: a price is zero or negative.
	ErrBadPrice = &highway.Error{Code: highway.EINVALID, Field: "price_per_gpu_hour", Message: "price must be positive"}
	// ErrBadVRAM: VRAM out of range.
	ErrBadVRAM = &highway.Error{Code: highway.EINVALID, Field: "vram_gib", Message: "VRAM out of range"}
	// ErrBadHours: a duration is zero, negative or above MaxHours.
	ErrBadHours = &highway.Error{Code: highway.EINVALID, Field: "hours", Message: "duration out of range"}
	// ErrBadRTT: an RTT or an RTT bound is out of range, or the RTT list
	// does not have one entry per catalog region.
	ErrBadRTT = &highway.Error{Code: highway.EINVALID, Field: "max_rtt_ms", Message: "RTT out of range"}
	// ErrBadReliability: reliability above 10 000 basis points.
	ErrBadReliability = &highway.Error{Code: highway.EINVALID, Field: "reliability_bps", Message: "reliability out of range"}
	// ErrBadOrderType: not rent_now, fok or gtc, or a field that type does
	// not take (an offer id on fok/gtc, an expiry on rent_now/fok).
	ErrBadOrderType = &highway.Error{Code: highway.EINVALID, Field: "type", Message: "invalid order type or field for that type"}
	// ErrBadExpiry: a good-til-cancelled order without a future expiry.
	ErrBadExpiry = &highway.Error{Code: highway.EINVALID, Field: "expires_at", Message: "expiry must be in the future"}
	// ErrBadFreeMask: a heartbeat reports free GPUs the machine does not have.
	ErrBadFreeMask = &highway.Error{Code: highway.EINVALID, Field: "free", Message: "free GPU mask names GPUs the machine does not have"}
	// ErrBadFlag: a boolean field encoded as something other than 0 or 1.
	ErrBadFlag = &highway.Error{Code: highway.EINVALID, Message: "boolean field is not 0 or 1"}
	// ErrOverflow: price × GPUs × hours does not fit in int64 micro-units.
	ErrOverflow = &highway.Error{Code: highway.EINVALID, Field: "max_price_per_gpu_hour", Message: "order total overflows"}
	// ErrUnknownModel: the GPU model is not in the catalog.
	ErrUnknownModel = &highway.Error{Code: highway.EINVALID, Field: "model", Message: "unknown GPU model"}
	// ErrUnknownRegion: the region is not in the catalog.
	ErrUnknownRegion = &highway.Error{Code: highway.EINVALID, Field: "region", Message: "unknown region"}
	// ErrMachineNotFound: no machine with that id.
	ErrMachineNotFound = &highway.Error{Code: highway.ENOTFOUND, Field: "machine_id", Message: "machine not found"}
	// ErrProviderMismatch: an upsert names another provider for an existing machine.
	ErrProviderMismatch = &highway.Error{Code: highway.EFORBIDDEN, Field: "provider_id", Message: "machine belongs to another provider"}
	// ErrMachineBusy: the change would drop GPUs that are reserved or leased.
	ErrMachineBusy = &highway.Error{Code: highway.ECONFLICT, Field: "gpus", Message: "reserved or leased GPUs cannot be removed"}
	// ErrAlreadySuspended / ErrNotSuspended: suspension state did not change.
	ErrAlreadySuspended = &highway.Error{Code: highway.ECONFLICT, Field: "provider_id", Message: "provider already suspended"}
	// ErrNotSuspended: reinstating a provider that is not suspended.
	ErrNotSuspended = &highway.Error{Code: highway.ECONFLICT, Field: "provider_id", Message: "provider is not suspended"}
	// ErrDuplicateOrder: an order with that id is live.
	ErrDuplicateOrder = &highway.Error{Code: highway.ECONFLICT, Field: "order_id", Message: "order id already in use"}
	// ErrOrderNotFound: no live order with that id.
	ErrOrderNotFound = &highway.Error{Code: highway.ENOTFOUND, Field: "order_id", Message: "order not found"}
	// ErrNotOwner: cancelling someone else's order.
	ErrNotOwner = &highway.Error{Code: highway.EFORBIDDEN, Field: "order_id", Message: "order belongs to another buyer"}
	// ErrOfferNotFound: rent-now on an offer that is not (or no longer) listed.
	ErrOfferNotFound = &highway.Error{Code: highway.ENOTFOUND, Field: "offer_id", Message: "offer not found or no longer listed"}
	// ErrNoMatch: rent-now or fill-or-kill found no offer meeting every constraint.
	ErrNoMatch = &highway.Error{Code: highway.ENOCAPACITY, Message: "no offer meets the order's constraints"}
	// ErrBadFloor: an interruptible floor below zero or above the ask.
	ErrBadFloor = &highway.Error{Code: highway.EINVALID, Field: "spot_floor_per_gpu_hour", Message: "interruptible floor must be between 0 and the ask"}
	// ErrBadNotice: a preemption notice outside 10 s to 5 min, or one
	// without an interruptible floor.
	ErrBadNotice = &highway.Error{Code: highway.EINVALID, Field: "notice_s", Message: "preemption notice must be 10 to 300 seconds, with an interruptible floor"}
	// ErrBelowFloor: an interruptible bid on a named offer below its floor.
	ErrBelowFloor = &highway.Error{Code: highway.EINVALID, Field: "max_price_per_gpu_hour", Message: "bid is below the offer's interruptible floor"}
	// ErrNotInterruptible: an interruptible bid on an offer that takes none.
	ErrNotInterruptible = &highway.Error{Code: highway.EINVALID, Field: "offer_id", Message: "offer does not rent interruptible GPUs"}
	// ErrMalformed: the bytes are not a version-1 command encoding.
	ErrMalformed = &highway.Error{Code: highway.EINVALID, Message: "malformed command encoding"}
	// ErrWrongState: the order is not in a state that allows the command
	// (confirming a resting order, cancelling a lease, ...).
	ErrWrongState = &highway.Error{Code: highway.ECONFLICT, Field: "order_id", Message: "order is not in a state that allows this"}
)
