package engine

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/enginetest"
	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/workflow"
)

// bigStateDefinition keeps whatever "fill" sends in the state; "tick" adds a small
// counter, emits an effect and schedules a timer; "small" is rejected below 1.
const bigStateDefinition = `{"initial_state":"s","inputs":{"fill":{},"tick":{},"small":{}},"states":{"s":{
  "timers":[{"key":"t","after":"1h","input":{"type":"tick","data":{"n":0}}}],
  "on":{"fill":{"to":"s"},
        "tick":{"to":"s","event":"Ticked","data":"{'n': input.data.n}","effects":[{"name":"tock","payload":"{'n': input.data.n}"}]},
        "small":[{"if":"input.data.n >= 1","to":"s"},{"reject":"n is below 1 & <not> allowed"}]}}}}`

// TestInputRecordsStayCompact: an input to an instance whose state is near
// IRONFLOW_MAX_DATA_BYTES stores a record of a few hundred bytes, not a copy of the
// state (the probe's 30-byte inputs stored the whole 40 MB answer each), and an
// idempotent retry of every kind of answer still gets the first body byte for byte,
// whether the instance is still at the answer's version or has moved on.
func TestInputRecordsStayCompact(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		ctx := context.Background()
		s := b.NewDatabase(t).Open(t)
		now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		e := New(Config{Store: s, NowFunc: func() time.Time { now = now.Add(time.Millisecond); return now }})
		_, _, err := e.PutDefinition(ctx, "big", []byte(bigStateDefinition))
		require.NoError(t, err)

		blob := strings.Repeat("x", 240<<10)
		fill, err := json.Marshal(map[string]string{"blob": blob})
		require.NoError(t, err)
		type sent struct {
			in   workflow.Input
			key  string
			body json.RawMessage
		}
		var all []sent
		send := func(typ, data, key string) Outcome {
			t.Helper()
			in := workflow.Input{Type: typ, Data: json.RawMessage(data)}
			o, err := e.Execute(ctx, "big", "i-1", in, ExecuteOptions{IdempotencyKey: key})
			require.NoError(t, err)
			require.False(t, o.Replayed)
			requireBodyVersion(t, o)
			all = append(all, sent{in, key, o.Body})
			return o
		}
		// A rejected first input: no instance, a null workflow.
		o := send("small", `{"n":0}`, "k-first")
		require.Equal(t, store.OutcomeRejected, o.Outcome)
		send("fill", string(fill), "k-fill")

		before, err := s.ListInputs(ctx, "big", "i-1", "", 100)
		require.NoError(t, err)
		const ticks = 5
		for i := range ticks {
			o := send("tick", `{"n":`+string(rune('1'+i))+`}`, "k-tick-"+string(rune('a'+i)))
			require.Equal(t, store.OutcomeAccepted, o.Outcome)
			require.Contains(t, string(o.Body), blob, "the answer shows the whole state")
		}
		send("small", `{"n":0}`, "k-rejected")
		inputs, err := s.ListInputs(ctx, "big", "i-1", "", 100)
		require.NoError(t, err)
		require.Len(t, inputs.Items, len(before.Items)+ticks+1)
		grown := 0
		for _, rec := range inputs.Items[len(before.Items):] {
			size := len(rec.Response) + len(rec.Data)
			require.Less(t, size, 1024, "input %s (%s) stored %d bytes: %s", rec.ID, rec.Type, size, rec.Response)
			grown += size
		}
		t.Logf("%d small inputs to an instance with %d KiB of state stored %d bytes of input records", ticks+1, len(fill)>>10, grown)

		o, err = e.Terminate(ctx, "big", "i-1", "done", ExecuteOptions{IdempotencyKey: "k-end"})
		require.NoError(t, err)
		requireBodyVersion(t, o)
		all = append(all, sent{key: "k-end", body: o.Body})
		send("tick", `{"n":9}`, "k-after") // already_completed

		// Each retry gets the first body: the latest from the snapshot, the others
		// replayed from the history.
		for _, x := range all {
			var again Outcome
			if x.key == "k-end" {
				again, err = e.Terminate(ctx, "big", "i-1", "done", ExecuteOptions{IdempotencyKey: x.key})
			} else {
				again, err = e.Execute(ctx, "big", "i-1", x.in, ExecuteOptions{IdempotencyKey: x.key})
			}
			require.NoError(t, err)
			require.True(t, again.Replayed, x.key)
			require.Equal(t, string(x.body), string(again.Body), "the replay of %s", x.key)
			requireBodyVersion(t, again)
		}
	})
}

// TestOnlyKeyedInputsKeepTheirAnswer: an input sent without an idempotency key can
// never be replayed, so its record keeps no answer and no request hash; the same input
// with a key keeps both, and its retry gets the first body back from it.
func TestOnlyKeyedInputsKeepTheirAnswer(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		ctx := context.Background()
		s, e := bigEngine(t, b)
		tick := workflow.Input{Type: "tick", Data: json.RawMessage(`{"n":1}`)}
		for _, id := range []string{"bare", "keyed"} {
			key := map[string]string{"keyed": "k-1"}[id]
			o, err := e.Execute(ctx, "big", id, tick, ExecuteOptions{IdempotencyKey: key})
			require.NoError(t, err)
			require.Equal(t, store.OutcomeAccepted, o.Outcome)
			inputs, err := s.ListInputs(ctx, "big", id, "", 10)
			require.NoError(t, err)
			require.Len(t, inputs.Items, 1)
			if key == "" {
				require.Empty(t, inputs.Items[0].Response, "a keyless input keeps no answer")
				require.Empty(t, inputs.Items[0].RequestHash, "nor a request hash")
				continue
			}
			require.NotEmpty(t, inputs.Items[0].Response)
			require.NotEmpty(t, inputs.Items[0].RequestHash)
			again, err := e.Execute(ctx, "big", id, tick, ExecuteOptions{IdempotencyKey: key})
			require.NoError(t, err)
			require.True(t, again.Replayed)
			require.Equal(t, string(o.Body), string(again.Body))
		}
	})
}

// bigEngine returns a store of b's and an engine on it with bigStateDefinition as
// type "big".
func bigEngine(t *testing.T, b enginetest.Backend) (store.Store, *Engine) {
	t.Helper()
	s := b.NewDatabase(t).Open(t)
	e := New(Config{Store: s})
	_, _, err := e.PutDefinition(context.Background(), "big", []byte(bigStateDefinition))
	require.NoError(t, err)
	return s, e
}

// requireBodyVersion checks that o.Version, the ETag the API sends without decoding the
// body, is the body's workflow.version, and 0 when the body has no workflow.
func requireBodyVersion(t *testing.T, o Outcome) {
	t.Helper()
	var res struct {
		Workflow *struct {
			Version int64 `json:"version"`
		} `json:"workflow"`
	}
	require.NoError(t, json.Unmarshal(o.Body, &res))
	var want int64
	if res.Workflow != nil {
		want = res.Workflow.Version
	}
	require.Equal(t, want, o.Version, "Outcome.Version of %s", o.Body)
}

// TestReplayOfAWholeStoredAnswer: an input record that holds the whole answer (as
// every record did before they left out the state) is replayed as it is.
func TestReplayOfAWholeStoredAnswer(t *testing.T) {
	t.Parallel()
	enginetest.ForEachBackend(t, func(t *testing.T, b enginetest.Backend) {
		ctx := context.Background()
		s, e := bigEngine(t, b)
		in := workflow.Input{Type: "fill", Data: json.RawMessage(`{"a":1}`)}
		whole := json.RawMessage(`{"outcome":"accepted","workflow":{"state":{"name":"s","data":{"a":1}},"version":1}}`)
		_, err := s.Execute(ctx, store.ExecuteParams{WorkflowType: "big", WorkflowID: "old", IdempotencyKey: "k", RequestHash: requestHash(in, "k"),
			Decide: func(ctx context.Context, _ *store.Instance, def *store.Definition) (*store.Write, error) {
				w, _, err := e.decide(ctx, "big", "old", in, ExecuteOptions{IdempotencyKey: "k", Source: store.SourceAPI}, nil, def)
				if err == nil {
					w.Input.Response = whole
				}
				return w, err
			}})
		require.NoError(t, err)
		again, err := e.Execute(ctx, "big", "old", in, ExecuteOptions{IdempotencyKey: "k"})
		require.NoError(t, err)
		require.True(t, again.Replayed)
		require.Equal(t, string(whole), string(again.Body))
	})
}
