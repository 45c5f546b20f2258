package outbox_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/enginetest"
	"github.com/ironflow/ironflow/internal/outbox"
)

// BenchmarkInputToWebhook measures, one input at a time, the time from an accepted
// input (Execute returned: the effect is committed) to its webhook arriving at a local
// receiver, and reports the median and p99 in milliseconds.
func BenchmarkInputToWebhook(b *testing.B) {
	for _, be := range enginetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			e := newEnv(b, be)
			arrived := make(chan time.Time, 1)
			rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				at := time.Now()
				_, _ = io.Copy(io.Discard, r.Body)
				arrived <- at
			}))
			b.Cleanup(rcv.Close)
			e.putWebhook(rcv.URL)
			w, err := outbox.New(outbox.Config{Store: e.store, Engine: e.eng, AllowNets: loopback,
				PollInterval: time.Minute}) // pickup must come from the commit signal
			require.NoError(b, err)
			require.NoError(b, w.Start(context.Background()))
			b.Cleanup(func() { _ = w.Stop(context.Background()) })

			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				e.place(fmt.Sprintf("o-%d", i))
				accepted := time.Now()
				select {
				case at := <-arrived:
					lat = append(lat, at.Sub(accepted))
				case <-time.After(10 * time.Second):
					b.Fatal("webhook did not arrive")
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
			b.ReportMetric(ms(lat[min(len(lat)-1, len(lat)*99/100)]), "p99-ms")
		})
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
