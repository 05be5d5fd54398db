package handlers

import (
	"encoding/json"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/broker"
)

// The offers answer is the API's hottest response: 50 offers each with a
// map of RTTs went through reflection at about 65 µs a page, a quarter of
// a browse request. It is written by hand instead, byte for byte what
// encoding/json writes for {"next_cursor", "offers": []apiOffer}
// (TestOffersJSONMatchesEncodingJSON holds it to that).
//
// A page's offers and its JSON are built in storage reused across requests
// (a pool), so a warm browse allocates next to nothing and the collector
// has little to do.
var offerPages = sync.Pool{New: func() any { return &offerPage{json: make([]byte, 0, 32<<10)} }}

type offerPage struct {
	page broker.OfferPage
	json []byte
}

func appendOffersJSON(buf []byte, offers []highway.Offer, next string) []byte {
	buf = append(buf, `{"next_cursor":`...)
	buf = appendJSONString(buf, next)
	buf = append(buf, `,"offers":[`...)
	for i := range offers {
		o := &offers[i]
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"id":`...)
		buf = appendJSONString(buf, o.ID)
		buf = append(buf, `,"provider_id":`...)
		buf = appendJSONString(buf, o.ProviderID)
		buf = append(buf, `,"machine_id":`...)
		buf = appendJSONString(buf, o.MachineID)
		buf = append(buf, `,"model":`...)
		buf = appendJSONString(buf, o.Model)
		buf = append(buf, `,"vram_gib":`...)
		buf = strconv.AppendInt(buf, o.VRAMGiB, 10)
		buf = append(buf, `,"gpus_free":`...)
		buf = strconv.AppendInt(buf, o.GPUsFree, 10)
		buf = append(buf, `,"gpus_total":`...)
		buf = strconv.AppendInt(buf, o.GPUsTotal, 10)
		buf = append(buf, `,"region":`...)
		buf = appendJSONString(buf, o.Region)
		buf = append(buf, `,"rtt_ms":`...)
		if o.RTTms == nil {
			buf = append(buf, "null"...)
		} else {
			// By region name, as encoding/json writes a map's keys.
			buf = append(buf, '{')
			for j, r := range o.RTTms {
				if j > 0 {
					buf = append(buf, ',')
				}
				buf = appendJSONString(buf, r.Region)
				buf = append(buf, ':')
				buf = strconv.AppendInt(buf, r.Ms, 10)
			}
			buf = append(buf, '}')
		}
		buf = append(buf, `,"reliability_bps":`...)
		buf = strconv.AppendInt(buf, o.ReliabilityBps, 10)
		buf = append(buf, `,"cuda_version":`...)
		buf = appendJSONString(buf, o.CUDAVersion)
		buf = append(buf, `,"driver_version":`...)
		buf = appendJSONString(buf, o.DriverVersion)
		buf = append(buf, `,"verified":`...)
		buf = strconv.AppendBool(buf, o.Verified)
		buf = append(buf, `,"simulated":`...)
		buf = strconv.AppendBool(buf, o.Simulated)
		if o.NoticeS != 0 {
			buf = append(buf, `,"notice_s":`...)
			buf = strconv.AppendInt(buf, o.NoticeS, 10)
		}
		if o.MeasuredMilliH100 != 0 {
			buf = append(buf, `,"measured_milli_h100":`...)
			buf = strconv.AppendInt(buf, o.MeasuredMilliH100, 10)
		}
		buf = append(buf, `,"price_per_gpu_hour":"`...)
		buf = strconv.AppendInt(buf, int64(o.PricePerGPUHour), 10)
		buf = append(buf, '"')
		if o.SpotFloor != 0 {
			buf = append(buf, `,"spot_floor_per_gpu_hour":"`...)
			buf = strconv.AppendInt(buf, int64(o.SpotFloor), 10)
			buf = append(buf, '"')
		}
		if o.PricePerH100Hour != 0 {
			buf = append(buf, `,"price_per_h100_hour":"`...)
			buf = strconv.AppendInt(buf, int64(o.PricePerH100Hour), 10)
			buf = append(buf, '"')
		}
		buf = append(buf, '}')
	}
	return append(buf, "]}"...)
}

// appendJSONString writes s as encoding/json does. Identifiers and
// versions are plain ASCII and are copied; anything else (quotes, HTML
// characters, control or non-ASCII bytes) goes through encoding/json.
func appendJSONString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(buf, q...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}
