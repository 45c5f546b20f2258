package reliability

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// procStatusKiB reads one field (VmRSS, VmHWM) of /proc/<pid>/status, in KiB.
func procStatusKiB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// TestAttackMemory measures what three attacks of the probe cost the server in memory
// and storage, against its own figures before them: the CEL amplification
// (`{'x': R.map(i, R.map(j, s))}` with a 900 KB string, which grew RSS by 570 MB) and
// the instance grown as large as it can be, followed by small inputs (40 MB of state,
// and each 30-byte input stored the whole answer: 191 MB for 5), and versions with
// large descriptions listed at once (a 143 MiB answer). The bounds asserted
// are loose (the machine is shared); the figures are logged for docs/RELIABILITY.md.
// Not parallel: it runs before the parallel tests start, so its peaks are its own and
// its heavy requests do not weigh on their bystanders.
func TestAttackMemory(t *testing.T) {
	dbURL := newDatabaseURL(t, "sqlite")
	srv := startServer(t, dbURL, nil)
	c := newClient(srv.URL, 60*time.Second)
	defer c.Close()
	b := newBystander(t, srv)
	b.p99(t) // warm up: pools, caches, the bystander's definition
	pid := srv.pid()
	base := procStatusKiB(t, pid, "VmHWM")

	// CEL amplification, repeated.
	c.putDefinition(t, "repeat", `{"initial_state":"s","inputs":{"go":{}},"states":{"s":{"on":{"go":{"to":"s",
	  "data":"{'x': input.data.r.map(i, input.data.r.map(j, input.data.s))}"}}}}}`)
	attack := inputOf("go", `{"r":[`+strings.TrimSuffix(strings.Repeat("0,", 15), ",")+`],"s":"`+strings.Repeat("x", 900_000)+`"}`)
	const repeats = 10
	for i := range repeats {
		r := c.Do(t, request{Method: http.MethodPost, Path: fmt.Sprintf("/v1/workflows/repeat/r-%d/inputs", i), Body: attack})
		requireProblem(t, r, http.StatusUnprocessableEntity, "too_large", "/states/s/on/go/data")
	}
	celPeak := procStatusKiB(t, pid, "VmHWM")
	t.Logf("CEL amplification: peak RSS %d MiB before, %d MiB after %d attacks (+%d MiB)", base>>10, celPeak>>10, repeats, (celPeak-base)>>10)
	require.Less(t, celPeak-base, int64(150<<10), "the probe saw +570 MB")

	// The largest instance there can be: state data grows until IRONFLOW_MAX_DATA_BYTES.
	c.putDefinition(t, "grow", `{"initial_state":"s","inputs":{"put":{},"tick":{}},"states":{"s":{"on":{
	  "put":{"to":"s"},"tick":{"to":"s","event":"Ticked","data":"{'n': input.data.n}"}}}}}`)
	const chunk = 60_000
	filled := 0
	for i := 0; ; i++ {
		r := c.Do(t, request{Method: http.MethodPost, Path: "/v1/workflows/grow/g-1/inputs",
			Body: inputOf("put", fmt.Sprintf(`{"k%d":"%s"}`, i, strings.Repeat("y", chunk)))})
		if r.Status == http.StatusUnprocessableEntity {
			requireProblem(t, r, http.StatusUnprocessableEntity, "too_large", "/state/data")
			break
		}
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		filled++
	}
	stateBytes := len(c.Get(t, "/v1/workflows/grow/g-1").Body)
	inputsBefore := queryInt(t, dbURL, "SELECT coalesce(sum(length(response) + length(data)), 0) FROM inputs WHERE workflow_id = 'g-1'")
	const small = 40
	for i := range small {
		r := c.Do(t, request{Method: http.MethodPost, Path: "/v1/workflows/grow/g-1/inputs",
			Body: inputOf("tick", fmt.Sprintf(`{"n":%d}`, i)), Header: map[string]string{"Idempotency-Key": fmt.Sprintf("tick-%d", i)}})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Greater(t, len(r.Body), stateBytes-1024, "the answer shows the whole state")
	}
	grown := queryInt(t, dbURL, "SELECT coalesce(sum(length(response) + length(data)), 0) FROM inputs WHERE workflow_id = 'g-1'") - inputsBefore
	statePeak := procStatusKiB(t, pid, "VmHWM")
	t.Logf("largest instance: %d inputs of %d KB filled it to %d KB; %d small inputs then stored %d bytes of input records (%d a input); peak RSS %d MiB (+%d MiB over the start)",
		filled, chunk/1000, stateBytes/1000, small, grown, grown/small, statePeak>>10, (statePeak-base)>>10)
	require.Less(t, grown/small, int64(1024), "an input record does not copy the state")
	require.Less(t, statePeak-base, int64(150<<10))

	// A retry of the first small input replays its answer from the history.
	r := c.Do(t, request{Method: http.MethodPost, Path: "/v1/workflows/grow/g-1/inputs",
		Body: inputOf("tick", `{"n":0}`), Header: map[string]string{"Idempotency-Key": "tick-0"}})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "true", r.Header.Get("Idempotent-Replayed"))

	requireBystanderFast(t, b, func() func() {
		f := startFlood(c, 1, floodPause, func(i int) request {
			return request{Method: http.MethodPost, Path: "/v1/workflows/grow/g-1/inputs", Body: inputOf("tick", fmt.Sprintf(`{"n":%d}`, i))}
		})
		return func() {
			statuses, _, errs := f.stop()
			require.Zero(t, errs)
			require.Equal(t, map[int]int{http.StatusOK: statuses[http.StatusOK]}, statuses)
		}
	})

	// Versions with large descriptions, listed with the largest limit: a page stops at
	// 4 MiB (the probe's 150 versions of 1 MB were one answer of 143 MiB, +680 MB RSS).
	const versions = 8
	for i := range versions {
		c.putDefinition(t, "described", fmt.Sprintf(`{"description":"%d %s","initial_state":"s","inputs":{"go":{}},"states":{"s":{"on":{"go":{"to":"s"}}}}}`,
			i, strings.Repeat("d", 700_000)))
	}
	list := request{Method: http.MethodGet, Path: "/v1/workflow-types/described/versions?limit=500"}
	r = c.Do(t, list)
	require.Equal(t, http.StatusOK, r.Status)
	items, _ := r.JSON(t)["items"].([]any)
	require.NotEmpty(t, r.JSON(t)["next_cursor"], "more than one page")
	require.Less(t, len(r.Body), 5<<20)
	listPeak := procStatusKiB(t, pid, "VmHWM")
	t.Logf("%d versions of 700 KB: a page of limit=500 holds %d (%d KB); peak RSS %d MiB (+%d MiB over the start)",
		versions, len(items), len(r.Body)/1000, listPeak>>10, (listPeak-base)>>10)
	require.Less(t, listPeak-base, int64(150<<10))
	requireBystanderFast(t, b, func() func() {
		f := startFlood(c, 1, floodPause, func(int) request { return list })
		return func() {
			statuses, _, errs := f.stop()
			require.Zero(t, errs)
			require.Equal(t, map[int]int{http.StatusOK: statuses[http.StatusOK]}, statuses)
		}
	})
}
