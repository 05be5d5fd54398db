package handlers

import (
	"encoding/json"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
)

// apiOffer is the offers answer's element as encoding/json would write it
// (what the API wrote before it was written by hand; highway.RTTs marshals
// as the map from region to milliseconds it used to be).
type apiOffer struct {
	highway.Offer
	Price        string `json:"price_per_gpu_hour"`
	SpotFloor    string `json:"spot_floor_per_gpu_hour,omitempty"`
	PricePerH100 string `json:"price_per_h100_hour,omitempty"`
}

func TestOffersJSONMatchesEncodingJSON(t *testing.T) {
	cases := [][]highway.Offer{
		nil,
		{},
		{{ID: "m-1", ProviderID: "p-1", MachineID: "m-1", Model: "H100", VRAMGiB: 80, GPUsFree: 3, GPUsTotal: 8,
			PricePerGPUHour: 2_490_000, Region: "us-east", RTTms: highway.RTTs{{Region: "ap-south", Ms: 180}, {Region: "eu-west", Ms: 70}, {Region: "us-east", Ms: 4}},
			ReliabilityBps: 9_950, CUDAVersion: "12.4", DriverVersion: "550.54.15", Verified: true, SpotFloor: 1_200_000, NoticeS: 30,
			MeasuredMilliH100: 1_042, PricePerH100Hour: 2_389_635}},
		{{ID: `odd "id" <b>&\`, Model: "L4", RTTms: highway.RTTs{}, Simulated: true, CUDAVersion: "tab\there é 日本"},
			{ID: "second", RTTms: nil, PricePerGPUHour: -1, GPUsFree: 1<<62 + 5, DriverVersion: "\u2028\x00"}},
	}
	for i, offers := range cases {
		for _, next := range []string{"", "50", `"&<>`} {
			out := make([]apiOffer, len(offers))
			for j, o := range offers {
				out[j] = apiOffer{Offer: o, Price: o.PricePerGPUHour.String()}
				if o.SpotFloor != 0 {
					out[j].SpotFloor = o.SpotFloor.String()
				}
				if o.PricePerH100Hour != 0 {
					out[j].PricePerH100 = o.PricePerH100Hour.String()
				}
			}
			want, err := json.Marshal(gin.H{"offers": out, "next_cursor": next})
			if err != nil {
				t.Fatal(err)
			}
			if got := appendOffersJSON(nil, offers, next); string(got) != string(want) {
				t.Fatalf("case %d, next %q:\n got %s\nwant %s", i, next, got, want)
			}
		}
	}
}
