package sqlstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ironflow/ironflow/internal/store"
)

// Store implements store.Store over a Driver. Create it with New.
type Store struct {
	d      Driver
	hub    *hub
	inputs *store.Batcher[*inputCall] // nil: every input goes alone
	prune  prunePass                  // where the current pass of Prune has read inputs to
}

var _ store.Store = (*Store)(nil)

// Open returns the store.Store of d once it answers with every migration applied; it
// closes d when not. Closing the store closes d.
func Open(ctx context.Context, d Driver) (*Store, error) {
	s := &Store{d: d, hub: newHub()}
	if d.BatchInputs() {
		s.inputs = newInputBatcher(s)
	}
	if err := s.Ping(ctx); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

// mapErr turns an error at the edge of a method into what callers branch on: a
// DecideFunc's error unchanged, everything else as OpError makes it.
func (s *Store) mapErr(op string, err error) error {
	var de decideError
	if errors.As(err, &de) {
		return de.err
	}
	return OpError(s.d, op, err)
}

// OpError is err of operation op of d as the store returns it: prefixed with the
// backend and op, and wrapping the store sentinel d.Sentinel finds (store.ErrNotFound
// alone for a row that is absent); nil for nil.
func OpError(d Driver, op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %s: %w", d.Name(), op, classify(d, err))
}

// classify returns err wrapping the store sentinel d.Sentinel finds, unless it is
// wrapped already.
func classify(d Driver, err error) error {
	if errors.Is(err, store.ErrUnavailable) {
		return err
	}
	switch sentinel := d.Sentinel(err); {
	case sentinel == nil || errors.Is(err, sentinel):
		return err
	case sentinel == store.ErrNotFound:
		return sentinel
	default:
		return fmt.Errorf("%w: %w", sentinel, err)
	}
}

// notify wakes the listeners of what a commit added, here and in other processes.
func (s *Store) notify(t Topics) {
	if !t.Effects && !t.Timers && !t.Events {
		return
	}
	s.hub.signal(t.list()...)
	s.d.Notify(t)
}

// Listen returns a channel that receives a (coalesced) signal after every commit, in this
// or (where the backend delivers them) any process sharing the database, that adds or
// re-enables work of topic. It is closed when ctx ends or the store is closed. Errors
// wrap store.ErrUnavailable when the backend cannot start listening.
func (s *Store) Listen(ctx context.Context, topic store.Topic) (<-chan struct{}, error) {
	if topic != store.TopicEffects && topic != store.TopicTimers && topic != store.TopicEvents {
		return nil, fmt.Errorf("%s: listen: unknown topic %q", s.d.Name(), topic)
	}
	if err := s.hub.open(); err != nil {
		return nil, s.mapErr("listen", err)
	}
	if err := s.d.Listen(ctx, s.hub.signal); err != nil {
		return nil, s.mapErr("listen", err)
	}
	ch, err := s.hub.subscribe(ctx, topic)
	return ch, s.mapErr("listen", err)
}

// Ping reports whether the database answers and every embedded migration is applied and
// not dirty; an error wrapping store.ErrUnavailable otherwise.
func (s *Store) Ping(ctx context.Context) error {
	return s.mapErr("ping", checkSchema(ctx, s.d))
}

// Close closes every Listen channel and then the driver.
func (s *Store) Close() error {
	s.hub.close()
	return s.d.Close()
}

// PutDefinition stores body as the next version of typ unless the latest version has the
// same hash; created reports whether a new version was made.
func (s *Store) PutDefinition(ctx context.Context, typ string, body json.RawMessage, hash string, now time.Time) (store.Definition, bool, error) {
	body, err := compact(body)
	if err == nil && body == nil {
		err = errors.New("empty body")
	}
	if err != nil {
		return store.Definition{}, false, s.mapErr("put definition", err)
	}
	created := false
	def, err := s.d.PutDefinition(ctx, typ, func(latest *store.Definition) *store.Definition {
		if latest != nil && latest.Hash == hash {
			return nil
		}
		next := store.Definition{Type: typ, Version: 1, Body: body, Hash: hash, CreatedAt: nowOr(now)}
		if latest != nil {
			next.Version = latest.Version + 1
		}
		created = true
		return &next
	})
	return def, created, s.mapErr("put definition", err)
}

// GetDefinition returns version of typ, or the latest when version is 0;
// store.ErrNotFound when absent.
func (s *Store) GetDefinition(ctx context.Context, typ string, version int) (store.Definition, error) {
	d, err := s.d.GetDefinition(ctx, typ, version)
	return d, s.mapErr("get definition", err)
}

// ListDefinitions returns the latest version of up to limit types named after
// afterType ("" for the first), by type name.
func (s *Store) ListDefinitions(ctx context.Context, afterType string, limit int) ([]store.Definition, error) {
	defs, err := s.d.ListDefinitions(ctx, afterType, limit)
	return nonNil(defs), s.mapErr("list definitions", err)
}

// ListDefinitionVersions returns up to limit versions of typ after afterVersion, oldest
// first (empty when there are none).
func (s *Store) ListDefinitionVersions(ctx context.Context, typ string, afterVersion, limit int) ([]store.Definition, error) {
	defs, err := s.d.ListDefinitionVersions(ctx, typ, afterVersion, limit)
	return nonNil(defs), s.mapErr("list definition versions", err)
}

// GetInstance returns one instance; store.ErrNotFound when absent.
func (s *Store) GetInstance(ctx context.Context, typ, id string) (store.Instance, error) {
	in, err := s.d.GetInstance(ctx, typ, id)
	return in, s.mapErr("get instance", err)
}

// ListInstances pages instances matching the filters, oldest first;
// store.ErrInvalidCursor when p.Cursor cannot be decoded.
func (s *Store) ListInstances(ctx context.Context, p store.ListInstancesParams) (store.Page[store.Instance], error) {
	return listPage(s, "list instances", p.Cursor, p.Limit, func(in store.Instance) int { return len(in.StateData) }, func(after int64, limit int) ([]Listed[store.Instance], error) {
		return s.d.ListInstances(ctx, p, after, limit)
	})
}

// CountInstances counts the instances matching p in each status, each count at most
// p.Limit (which must be positive).
func (s *Store) CountInstances(ctx context.Context, p store.CountInstancesParams) (store.InstanceCounts, error) {
	if p.Limit <= 0 {
		return store.InstanceCounts{}, s.mapErr("count instances", fmt.Errorf("limit %d is not positive", p.Limit))
	}
	c, err := s.d.CountInstances(ctx, p)
	return c, s.mapErr("count instances", err)
}

// ListEvents returns up to limit (50 when limit <= 0) events of an instance with
// seq > afterSeq, in order; an empty list for an unknown instance.
func (s *Store) ListEvents(ctx context.Context, typ, id string, afterSeq int64, limit int) ([]store.Event, error) {
	evs, err := s.d.ListEvents(ctx, typ, id, afterSeq, PageLimit(limit))
	return nonNil(evs), s.mapErr("list events", err)
}

// ReadFeed returns the events after p.After in commit order; see store.Feed. A page
// is read as the lists are (listPage): a chunk first, then as many events as fit in
// what is left of MaxPageBytes at the largest event data seen, and it ends after the
// event that brings it to MaxPageBytes, so 500 events of the largest data are never one
// answer. An Unsettled read (for waking waiters, not for following) is one read.
func (s *Store) ReadFeed(ctx context.Context, p store.FeedParams) (store.FeedPage, error) {
	limit := PageLimit(p.Limit)
	if p.Unsettled {
		p.Limit = limit
		page, err := s.d.ReadFeed(ctx, p)
		page.Items = nonNil(page.Items)
		return page, s.mapErr("read feed", err)
	}
	out := store.FeedPage{Items: make([]store.FeedEvent, 0, min(limit, pageChunk))}
	total, largest := 0, 1
	want := min(limit, pageChunk)
	for {
		p.Limit = want
		page, err := s.d.ReadFeed(ctx, p)
		if err != nil {
			return store.FeedPage{Items: []store.FeedEvent{}}, s.mapErr("read feed", err)
		}
		for i, ev := range page.Items {
			out.Items = append(out.Items, ev)
			n := len(ev.Data)
			total += n
			largest = max(largest, n)
			if total >= MaxPageBytes && i < len(page.Items)-1 {
				out.Next, out.Cut = ev.Cursor, true
				return out, nil
			}
		}
		out.Next, out.HeldBack = page.Next, page.HeldBack
		if len(page.Items) < want || len(out.Items) == limit {
			return out, nil
		}
		if total >= MaxPageBytes {
			out.Cut = true
			return out, nil
		}
		p.After = page.Next
		want = min(limit-len(out.Items), max(1, (MaxPageBytes-total)/largest))
	}
}

// FeedHead returns the current end of the feed; see store.Feed.
func (s *Store) FeedHead(ctx context.Context) (string, error) {
	head, err := s.d.FeedHead(ctx)
	return head, s.mapErr("feed head", err)
}

// ListInputs pages the input records of an instance, oldest first;
// store.ErrInvalidCursor when cursor cannot be decoded.
func (s *Store) ListInputs(ctx context.Context, typ, id, cursor string, limit int) (store.Page[store.InputRecord], error) {
	return listPage(s, "list inputs", cursor, limit, func(in store.InputRecord) int { return len(in.Data) + len(in.Response) }, func(after int64, limit int) ([]Listed[store.InputRecord], error) {
		return s.d.ListInputs(ctx, typ, id, after, limit)
	})
}

// PutWebhook creates or replaces the endpoint of a type (URL and secrets), makes it
// active and wakes the effect workers, since effects waiting for an endpoint become
// deliverable. A replaced endpoint keeps its CreatedAt; UpdatedAt (or CreatedAt, or
// now) stamps the change.
func (s *Store) PutWebhook(ctx context.Context, w store.Webhook) (store.Webhook, error) {
	secrets, err := EncodeSecrets(w.Secrets)
	if err != nil {
		return store.Webhook{}, s.mapErr("put webhook", err)
	}
	w.UpdatedAt = nowOr(orTime(w.UpdatedAt, w.CreatedAt))
	w.CreatedAt = nowOr(orTime(w.CreatedAt, w.UpdatedAt))
	out, err := s.d.PutWebhook(ctx, w, secrets)
	if err != nil {
		return store.Webhook{}, s.mapErr("put webhook", err)
	}
	s.notify(Topics{Effects: true})
	return out, nil
}

// GetWebhook returns the endpoint of a type; store.ErrNotFound when absent.
func (s *Store) GetWebhook(ctx context.Context, typ string) (store.Webhook, error) {
	w, err := s.d.GetWebhook(ctx, typ)
	return w, s.mapErr("get webhook", err)
}

// DeleteWebhook removes the endpoint of a type; its effects wait for a new one.
// store.ErrNotFound when absent.
func (s *Store) DeleteWebhook(ctx context.Context, typ string) error {
	found, err := s.d.DeleteWebhook(ctx, typ)
	return s.mapErr("delete webhook", foundOr(found, err, "webhook", typ))
}

// SetWebhookStatus disables (store.WebhookDisabled) or re-enables (store.WebhookActive)
// an endpoint; re-enabling wakes the effect workers. store.ErrNotFound when absent.
func (s *Store) SetWebhookStatus(ctx context.Context, typ, status string, now time.Time) error {
	if status != store.WebhookActive && status != store.WebhookDisabled {
		return s.mapErr("set webhook status", fmt.Errorf("invalid status %q", status))
	}
	found, err := s.d.SetWebhookStatus(ctx, typ, status, nowOr(now))
	if err = foundOr(found, err, "webhook", typ); err != nil {
		return s.mapErr("set webhook status", err)
	}
	s.notify(Topics{Effects: status == store.WebhookActive})
	return nil
}

// RotateWebhookSecret makes secret the signing secret of the endpoint. The previous
// secrets keep signing until oldExpiresAt (or their own earlier expiry); secrets expired
// at now, and an old copy of secret itself, are dropped. store.ErrNotFound when absent.
func (s *Store) RotateWebhookSecret(ctx context.Context, typ, secret string, oldExpiresAt, now time.Time) (store.Webhook, error) {
	now = nowOr(now)
	w, err := s.d.RotateWebhookSecret(ctx, typ, now, func(w store.Webhook) (string, error) {
		secrets := []store.WebhookSecret{{Secret: secret}}
		for _, old := range w.Secrets {
			exp := oldExpiresAt.UTC()
			if old.ExpiresAt != nil && old.ExpiresAt.Before(exp) {
				exp = *old.ExpiresAt
			}
			if !exp.After(now) || old.Secret == secret {
				continue
			}
			secrets = append(secrets, store.WebhookSecret{Secret: old.Secret, ExpiresAt: &exp})
		}
		return EncodeSecrets(secrets)
	})
	return w, s.mapErr("rotate webhook secret", err)
}

// ClaimEffects leases up to p.Limit (50 when <= 0) due pending effects whose type has an
// active endpoint and whose lease is free or ended (at exactly its end, too), earliest
// due first, with the endpoints of their types. A backend with row locks skips rows
// another worker is claiming.
func (s *Store) ClaimEffects(ctx context.Context, p store.ClaimParams) (store.EffectClaim, error) {
	if p.Worker == "" {
		return store.EffectClaim{}, s.mapErr("claim effects", errors.New("empty worker"))
	}
	c, err := s.d.ClaimEffects(ctx, p, PageLimit(p.Limit))
	if err != nil {
		return store.EffectClaim{}, s.mapErr("claim effects", err)
	}
	slices.SortFunc(c.Effects, func(a, b store.Effect) int {
		return cmp.Or(a.NextAttemptAt.Compare(b.NextAttemptAt), cmp.Compare(a.ID, b.ID))
	})
	c.Effects = nonNil(c.Effects)
	return c, nil
}

// GetEffect returns an effect with its attempts, oldest first; store.ErrNotFound when
// absent.
func (s *Store) GetEffect(ctx context.Context, id string) (store.Effect, []store.Attempt, error) {
	e, attempts, err := s.d.GetEffect(ctx, id)
	if err != nil {
		return store.Effect{}, nil, s.mapErr("get effect", err)
	}
	return e, nonNil(attempts), nil
}

// ListEffects pages effects matching the filters, oldest first;
// store.ErrInvalidCursor when p.Cursor cannot be decoded.
func (s *Store) ListEffects(ctx context.Context, p store.ListEffectsParams) (store.Page[store.Effect], error) {
	return listPage(s, "list effects", p.Cursor, p.Limit, func(e store.Effect) int { return len(e.Payload) + len(e.LastError) + len(e.Item) }, func(after int64, limit int) ([]Listed[store.Effect], error) {
		return s.d.ListEffects(ctx, p, after, limit)
	})
}

// RetryEffect puts a dead effect back to pending, due now, with a fresh attempt budget
// and wakes the effect workers. store.ErrWrongStatus when it is not dead,
// store.ErrNotFound when it does not exist.
func (s *Store) RetryEffect(ctx context.Context, id string, now time.Time) (store.Effect, error) {
	e, err := s.d.RetryEffect(ctx, id, nowOr(now))
	if err != nil {
		return store.Effect{}, s.mapErr("retry effect", s.whyNoMatch(ctx, TableEffects, id, err))
	}
	s.notify(Topics{Effects: true})
	return e, nil
}

// CancelEffect discards a pending or dead effect: it is never delivered, and a worker
// holding it records its attempt and routes nothing. store.ErrWrongStatus when it is
// delivered or cancelled already, store.ErrNotFound when it does not exist.
func (s *Store) CancelEffect(ctx context.Context, id string, now time.Time) (store.Effect, error) {
	e, err := s.d.CancelEffect(ctx, id, nowOr(now))
	return e, s.mapErr("cancel effect", s.whyNoMatch(ctx, TableEffects, id, err))
}

// whyNoMatch explains ErrNoMatch of a status-guarded update of row id of table:
// store.ErrNotFound, or store.ErrWrongStatus naming the status. Other errors pass.
func (s *Store) whyNoMatch(ctx context.Context, table, id string, err error) error {
	if !errors.Is(err, ErrNoMatch) {
		return err
	}
	status, err := s.d.RowStatus(ctx, table, id)
	if err != nil {
		return err
	}
	return fmt.Errorf("%s %s is %s: %w", table, id, status, store.ErrWrongStatus)
}

// ScheduleTimer stores a pending timer outside any decision (a delayed input), replacing
// a pending timer with the same key on the instance (which need not exist yet), and wakes
// the timer workers. Missing ID, NextAttemptAt (FireAt) and times are filled in.
func (s *Store) ScheduleTimer(ctx context.Context, t store.Timer) (store.Timer, error) {
	if err := prepareTimer(&t, time.Time{}); err != nil {
		return store.Timer{}, s.mapErr("schedule timer", err)
	}
	if err := s.d.ScheduleTimer(ctx, t); err != nil {
		return store.Timer{}, s.mapErr("schedule timer", err)
	}
	s.notify(Topics{Timers: true})
	return t, nil
}

// ClaimTimers leases up to p.Limit (50 when <= 0) pending timers due by p.Due() whose
// lease is free or ended at p.Now (at exactly its end, too), earliest due first.
func (s *Store) ClaimTimers(ctx context.Context, p store.ClaimParams) ([]store.Timer, error) {
	if p.Worker == "" {
		return nil, s.mapErr("claim timers", errors.New("empty worker"))
	}
	timers, err := s.d.ClaimTimers(ctx, p, PageLimit(p.Limit))
	if err != nil {
		return nil, s.mapErr("claim timers", err)
	}
	slices.SortFunc(timers, func(a, b store.Timer) int {
		return cmp.Or(a.NextAttemptAt.Compare(b.NextAttemptAt), cmp.Compare(a.ID, b.ID))
	})
	return nonNil(timers), nil
}

// NextTimerAt returns the earliest time a pending timer can be claimed: the later of its
// NextAttemptAt and its lease end. ok is false when there is none.
func (s *Store) NextTimerAt(ctx context.Context) (time.Time, bool, error) {
	at, err := s.d.NextTimerAt(ctx)
	if err != nil || at == nil {
		return time.Time{}, false, s.mapErr("next timer", err)
	}
	return at.UTC(), true, nil
}

// GetTimer returns one timer; store.ErrNotFound when absent.
func (s *Store) GetTimer(ctx context.Context, id string) (store.Timer, error) {
	t, err := s.d.GetTimer(ctx, id)
	return t, s.mapErr("get timer", err)
}

// ListTimers pages timers matching the filters, oldest first;
// store.ErrInvalidCursor when p.Cursor cannot be decoded.
func (s *Store) ListTimers(ctx context.Context, p store.ListTimersParams) (store.Page[store.Timer], error) {
	return listPage(s, "list timers", p.Cursor, p.Limit, func(t store.Timer) int { return len(t.InputData) + len(t.LastError) }, func(after int64, limit int) ([]Listed[store.Timer], error) {
		return s.d.ListTimers(ctx, p, after, limit)
	})
}

// CancelTimer cancels a pending timer or discards a dead one. store.ErrWrongStatus when
// it has fired or is cancelled already, store.ErrNotFound when it does not exist.
func (s *Store) CancelTimer(ctx context.Context, id string, now time.Time) (store.Timer, error) {
	t, err := s.d.CancelTimer(ctx, id, nowOr(now))
	return t, s.mapErr("cancel timer", s.whyNoMatch(ctx, TableTimers, id, err))
}

// RetryTimer puts a dead timer back to pending, due now, with a fresh attempt budget and
// wakes the timer workers. store.ErrWrongStatus when it is not dead or when another
// pending timer of the instance has taken its key meanwhile, store.ErrNotFound when it
// does not exist.
func (s *Store) RetryTimer(ctx context.Context, id string, now time.Time) (store.Timer, error) {
	t, err := s.d.RetryTimer(ctx, id, nowOr(now))
	if err != nil {
		return store.Timer{}, s.mapErr("retry timer", s.whyNoMatch(ctx, TableTimers, id, err))
	}
	s.notify(Topics{Timers: true})
	return t, nil
}

// Stats returns backlog figures for metrics: pending and dead effects and timers (due or
// not) and the creation time of the oldest pending effect.
func (s *Store) Stats(ctx context.Context, _ time.Time) (store.Stats, error) {
	st, err := s.d.Stats(ctx)
	if err != nil {
		return store.Stats{}, s.mapErr("stats", err)
	}
	st.OldestPendingEffect = utcPtr(st.OldestPendingEffect)
	return st, nil
}

// foundOr is err, or a store.ErrNotFound naming the row when it was not found.
func foundOr(found bool, err error, what, name string) error {
	if err == nil && !found {
		return fmt.Errorf("%s %s: %w", what, name, store.ErrNotFound)
	}
	return err
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
