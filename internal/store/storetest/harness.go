package storetest

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
)

// initialState is the state every test instance starts in.
const initialState = "new"

// env is the setup bundle of one test: a fresh store and a fixed clock.
type env struct {
	t   *testing.T
	s   store.Store
	ctx context.Context
	// now is the test's "current" time. Times are whole microseconds, the precision
	// every store keeps.
	now time.Time
}

func newEnv(t *testing.T, newStore NewStoreFunc) *env {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return &env{
		t:   t,
		s:   newStore(t),
		ctx: ctx,
		now: time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC),
	}
}

// at returns now plus d.
func (e *env) at(d time.Duration) time.Time { return e.now.Add(d) }

// step describes one input and how the suite's DecideFunc answers it.
type step struct {
	Input    string // input type; default "go"
	Data     string // event data, a JSON merge patch; default {}
	To       string // next state; "" stays
	Complete bool   // the transition completes the instance
	End      string // the transition ends the instance with this status (failed, terminated)
	// CancelEffects and CancelAllTimers are copied to the Write.
	CancelEffects   string
	CancelAllTimers bool
	Reject          string // reject with this reason
	Effects         []string
	// Policies give effects by name their policy: Key, MaxAttempts, the intervals,
	// Timeout, StateScoped, OnDead, the send target (SendType, SendID, SendChild) and
	// the for_each element (Item, ItemIndex) are copied.
	Policies  map[string]store.Effect
	Timers    []store.Timer // Key, FireAt, InputType are used
	Cancel    []string      // timer keys to cancel
	UniqueKey string        // set on the instance the input creates
	// Parent's ParentType, ParentID and Link are set on the instance the input creates.
	Parent   store.Instance
	Key      string // idempotency key
	Hash     string // request hash; default Data
	Expected *int64
	DryRun   bool
	Source   string
	Depth    int       // ChainDepth of the effects it emits
	At       time.Time // the input's time; default env.now
	// Calls, when set, counts the DecideFunc's invocations.
	Calls *atomic.Int64
}

func (s step) input() string {
	if s.Input == "" {
		return "go"
	}
	return s.Input
}

func (s step) data() string {
	if s.Data == "" {
		return "{}"
	}
	return s.Data
}

func (s step) hash() string {
	if s.Hash == "" {
		return s.data()
	}
	return s.Hash
}

// params builds the ExecuteParams of s on (typ, id).
func (e *env) params(typ, id string, s step) store.ExecuteParams {
	if s.At.IsZero() {
		s.At = e.now
	}
	return store.ExecuteParams{
		WorkflowType:    typ,
		WorkflowID:      id,
		IdempotencyKey:  s.Key,
		RequestHash:     s.hash(),
		ExpectedVersion: s.Expected,
		DryRun:          s.DryRun,
		Decide:          decideStep(typ, id, s),
	}
}

func (e *env) exec(typ, id string, s step) (store.ExecuteResult, error) {
	return e.s.Execute(e.ctx, e.params(typ, id, s))
}

func (e *env) mustExec(typ, id string, s step) store.ExecuteResult {
	e.t.Helper()
	res, err := e.exec(typ, id, s)
	require.NoError(e.t, err)
	return res
}

// decideStep mimics the engine's decision for s: completed instances answer
// already_completed, a Reject rejects, anything else appends one event, folds its data
// into the snapshot and writes the step's effects and timers.
func decideStep(typ, id string, s step) store.DecideFunc {
	return func(_ context.Context, cur *store.Instance, _ *store.Definition) (*store.Write, error) {
		if s.Calls != nil {
			s.Calls.Add(1)
		}
		at := s.At
		source := s.Source
		if source == "" {
			source = store.SourceAPI
		}
		in := store.InputRecord{
			ID:             uuid.NewString(),
			WorkflowType:   typ,
			WorkflowID:     id,
			IdempotencyKey: s.Key,
			RequestHash:    s.hash(),
			Type:           s.input(),
			Data:           json.RawMessage(s.data()),
			Source:         source,
			CreatedAt:      at,
		}
		var version int64
		if cur != nil {
			version = cur.Version
		}
		in.Version = version
		switch {
		case cur != nil && store.Ended(cur.Status):
			in.Outcome = store.OutcomeAlreadyCompleted
			in.Response = json.RawMessage(`{"outcome":"already_completed"}`)
			return &store.Write{Input: in}, nil
		case s.Reject != "":
			in.Outcome = store.OutcomeRejected
			in.Reason = s.Reject
			in.Response = json.RawMessage(`{"outcome":"rejected"}`)
			return &store.Write{Input: in}, nil
		}

		from, stateData, defVersion, uniqueKey, created := initialState, json.RawMessage(`{}`), 1, s.UniqueKey, at
		if cur != nil {
			from, stateData, defVersion, uniqueKey, created = cur.StateName, cur.StateData, cur.DefinitionVersion, cur.UniqueKey, cur.CreatedAt
		}
		to := s.To
		if to == "" {
			to = from
		}
		seq := version + 1
		inst := &store.Instance{
			Type:              typ,
			ID:                id,
			DefinitionVersion: defVersion,
			StateName:         to,
			StateData:         mergePatchJSON(stateData, json.RawMessage(s.data())),
			Status:            store.StatusRunning,
			Version:           seq,
			UniqueKey:         uniqueKey,
			CreatedAt:         created,
			UpdatedAt:         at,
		}
		if cur == nil {
			inst.ParentType, inst.ParentID, inst.Link = s.Parent.ParentType, s.Parent.ParentID, s.Parent.Link
		} else {
			inst.ParentType, inst.ParentID, inst.Link = cur.ParentType, cur.ParentID, cur.Link
		}
		if s.Complete {
			inst.Status = store.StatusCompleted
			inst.CompletedAt = &at
		}
		if s.End != "" {
			inst.Status = s.End
		}
		w := &store.Write{
			Instance: inst,
			Events: []store.Event{{
				WorkflowType: typ, WorkflowID: id, Seq: seq, Type: "E_" + s.input(), From: from, To: to,
				Data: json.RawMessage(s.data()), InputType: s.input(), InputID: in.ID, RecordedAt: at,
			}},
			CancelTimerKeys: s.Cancel,
			CancelEffects:   s.CancelEffects,
			CancelAllTimers: s.CancelAllTimers,
		}
		for _, name := range s.Effects {
			pol := s.Policies[name]
			w.Effects = append(w.Effects, store.Effect{
				ID: uuid.NewString(), WorkflowType: typ, WorkflowID: id, Seq: seq, Name: name,
				Payload: json.RawMessage(`{"effect":"` + name + `"}`), Status: store.EffectPending,
				NextAttemptAt: at, CreatedAt: at, UpdatedAt: at, ChainDepth: s.Depth,
				Key: pol.Key, MaxAttempts: pol.MaxAttempts, InitialInterval: pol.InitialInterval,
				MaxInterval: pol.MaxInterval, Timeout: pol.Timeout, StateScoped: pol.StateScoped, OnDead: pol.OnDead,
				SendType: pol.SendType, SendID: pol.SendID, SendChild: pol.SendChild,
				Item: pol.Item, ItemIndex: pol.ItemIndex,
			})
		}
		for _, tm := range s.Timers {
			tm.ID = uuid.NewString()
			tm.WorkflowType, tm.WorkflowID = typ, id
			tm.Status = store.TimerPending
			tm.NextAttemptAt = tm.FireAt
			if tm.InputType == "" {
				tm.InputType = "tick"
			}
			if tm.InputData == nil {
				tm.InputData = json.RawMessage(`{}`)
			}
			tm.CreatedAt, tm.UpdatedAt = at, at
			w.Timers = append(w.Timers, tm)
		}
		in.Outcome = store.OutcomeAccepted
		in.Version = seq
		in.Response = json.RawMessage(`{"outcome":"accepted"}`)
		w.Input = in
		return w, nil
	}
}

// mergePatchJSON applies patch to doc as an RFC 7386 JSON merge patch.
func mergePatchJSON(doc, patch json.RawMessage) json.RawMessage {
	var d, p any
	if err := json.Unmarshal(doc, &d); err != nil {
		panic(err)
	}
	if err := json.Unmarshal(patch, &p); err != nil {
		panic(err)
	}
	out, err := json.Marshal(mergePatch(d, p))
	if err != nil {
		panic(err)
	}
	return out
}

func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t := map[string]any{}
	if m, ok := target.(map[string]any); ok {
		for k, v := range m {
			t[k] = v
		}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
		} else {
			t[k] = mergePatch(t[k], v)
		}
	}
	return t
}

// fold replays events from the initial state the way the engine's evolve does.
func fold(events []store.Event) (name string, data json.RawMessage) {
	name, data = initialState, json.RawMessage(`{}`)
	for _, ev := range events {
		name = ev.To
		if len(ev.Data) > 0 {
			data = mergePatchJSON(data, ev.Data)
		}
	}
	return name, data
}

func ptr[T any](v T) *T { return &v }

// requireTime asserts that got is the same instant as want.
func requireTime(t *testing.T, want, got time.Time, msgAndArgs ...any) {
	t.Helper()
	require.Truef(t, want.Equal(got), "want time %s, got %s %v", want, got, msgAndArgs)
}

// claimEffects claims effects for worker at now with a 30 s lease.
func (e *env) claimEffects(worker string, now time.Time, limit int) []store.Effect {
	e.t.Helper()
	got, err := e.s.ClaimEffects(e.ctx, store.ClaimParams{
		Worker: worker, Limit: limit, Now: now, LeaseExpiry: now.Add(30 * time.Second),
	})
	require.NoError(e.t, err)
	return got.Effects
}

// claimTimers claims timers for worker at now with a 30 s lease.
func (e *env) claimTimers(worker string, now time.Time, limit int) []store.Timer {
	e.t.Helper()
	got, err := e.s.ClaimTimers(e.ctx, store.ClaimParams{
		Worker: worker, Limit: limit, Now: now, LeaseExpiry: now.Add(30 * time.Second),
	})
	require.NoError(e.t, err)
	return got
}

// putWebhook registers an active endpoint for typ.
func (e *env) putWebhook(typ string) store.Webhook {
	e.t.Helper()
	return PutWebhook(e.t, e.s, typ, e.now)
}

// PutWebhook registers an active endpoint for typ on s, made at at, and fails t if it
// cannot.
func PutWebhook(t testing.TB, s store.Store, typ string, at time.Time) store.Webhook {
	t.Helper()
	w, err := s.PutWebhook(context.Background(), store.Webhook{
		WorkflowType: typ, URL: "https://example.com/hooks/" + typ,
		Secrets:   []store.WebhookSecret{{Secret: "whsec_" + typ}},
		CreatedAt: at, UpdatedAt: at,
	})
	require.NoError(t, err)
	return w
}

func (e *env) instance(typ, id string) store.Instance {
	e.t.Helper()
	inst, err := e.s.GetInstance(e.ctx, typ, id)
	require.NoError(e.t, err)
	return inst
}

func (e *env) events(typ, id string) []store.Event {
	e.t.Helper()
	evs, err := e.s.ListEvents(e.ctx, typ, id, 0, 100000)
	require.NoError(e.t, err)
	return evs
}

func (e *env) inputs(typ, id string) []store.InputRecord {
	e.t.Helper()
	p, err := e.s.ListInputs(e.ctx, typ, id, "", 1000)
	require.NoError(e.t, err)
	return p.Items
}

func (e *env) effects(typ, id string) []store.Effect {
	e.t.Helper()
	p, err := e.s.ListEffects(e.ctx, store.ListEffectsParams{WorkflowType: typ, WorkflowID: id, Limit: 1000})
	require.NoError(e.t, err)
	return p.Items
}

func (e *env) timers(typ, id, status string) []store.Timer {
	e.t.Helper()
	p, err := e.s.ListTimers(e.ctx, store.ListTimersParams{WorkflowType: typ, WorkflowID: id, Status: status, Limit: 1000})
	require.NoError(e.t, err)
	return p.Items
}
