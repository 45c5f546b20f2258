// Package outbox delivers effects: it claims pending outbox rows, POSTs each as a
// Standard Webhooks message signed with the workflow type's secrets, records every
// attempt, routes an input found in a 2xx response back into the instance in the same
// transaction that marks the effect delivered, and retries failures with exponential
// backoff and full jitter until the effect is dead.
//
// Delivery is at least once: a receiver may see an effect again (same webhook-id) when a
// worker dies after the POST and before the commit. A routed input, keyed by the effect
// id, is applied exactly once all the same.
package outbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ironflow/ironflow/internal/engine"
	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/worker"
	"github.com/ironflow/ironflow/internal/workflow"
)

// Defaults of Config.
const (
	DefaultConcurrency = 64
	// DefaultMaxChainDepth is the default of Config.MaxChainDepth.
	DefaultMaxChainDepth = 20
	// MaxRecordedResponse is how much of a response body an attempt keeps.
	MaxRecordedResponse = 4 << 10
)

// Delivery results, the label of the deliveries metric.
const (
	ResultDelivered = "delivered"  // 2xx, recorded (and its input routed)
	ResultRetry     = "retry"      // failed, another attempt is scheduled
	ResultDead      = "dead"       // failed for the last time, or its routed input is invalid
	ResultGone      = "gone"       // 410: the endpoint was disabled, the effect waits
	ResultLeaseLost = "lease_lost" // another worker owns the effect now; nothing recorded
	ResultError     = "error"      // the attempt could not be recorded (store failure)
	ResultCancelled = "cancelled"  // the effect was cancelled in flight: attempt recorded, answer not routed
)

// Config configures a Worker. Store and Engine are required.
type Config struct {
	Store  store.Store
	Engine *engine.Engine
	// Client delivers the webhooks; NewClient with Timeout and AllowNets when nil.
	Client *http.Client
	// Timeout bounds one delivery (DefaultTimeout when 0).
	Timeout time.Duration
	// AllowNets are private networks webhooks may reach nonetheless.
	AllowNets []netip.Prefix
	// MaxAttempts is the attempt budget before an effect is dead, and
	// RetryInitialInterval and RetryMaxInterval bound the backoff between attempts
	// (worker.NewRetry: zero takes worker.DefaultMaxAttempts and so on).
	MaxAttempts          int
	RetryInitialInterval time.Duration
	RetryMaxInterval     time.Duration
	// Concurrency bounds the deliveries in flight (DefaultConcurrency): requests to
	// receivers. A delivered effect waiting for its completion batch gives its slot
	// back; at most Concurrency wait so (worker.Config.ProcessFunc).
	Concurrency int
	// ConcurrencyPerType bounds the deliveries in flight of one workflow type, so that
	// a slow or self-answering receiver leaves slots to the others (3/4 of Concurrency
	// when 0; at most Concurrency).
	ConcurrencyPerType int
	// MaxChainDepth bounds a chain of routed answers: an effect whose input came from
	// MaxChainDepth routed answers in a row is dead when its own answer routes another
	// input (DefaultMaxChainDepth when 0).
	MaxChainDepth int
	// BatchSize bounds one claim (Concurrency when 0).
	BatchSize int
	// Lease is how long a claimed effect stays with this worker (3 × Timeout when 0).
	Lease time.Duration
	// PollInterval is the fallback when no commit notification arrives.
	PollInterval time.Duration
	// WorkerID is this worker's locked_by value; generated when empty.
	WorkerID string
	// NowFunc is the clock of claims, attempts and signatures (time.Now when nil).
	NowFunc func() time.Time
	// RandFunc returns a uniform int64 in [0, n) for the backoff jitter.
	RandFunc func(n int64) int64
	Logger   *slog.Logger
	// Registerer receives the worker's metrics; none are registered when nil.
	Registerer prometheus.Registerer
}

// Worker is the effect outbox worker. Create it with New, then Start and Stop it.
type Worker struct {
	cfg    Config
	client *http.Client
	retry  worker.Retry
	batch  *store.Batcher[store.CompleteEffectParams]
	svc    *worker.Service[claimed]
	log    *slog.Logger
	m      *metrics
}

// New returns a Worker for cfg. Errors: a missing Store or Engine, metrics that cannot
// be registered.
func New(cfg Config) (*Worker, error) {
	if cfg.Store == nil || cfg.Engine == nil {
		return nil, errors.New("outbox: Store and Engine are required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.ConcurrencyPerType <= 0 {
		cfg.ConcurrencyPerType = max(1, cfg.Concurrency*3/4)
	}
	cfg.ConcurrencyPerType = min(cfg.ConcurrencyPerType, cfg.Concurrency)
	if cfg.MaxChainDepth <= 0 {
		cfg.MaxChainDepth = DefaultMaxChainDepth
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 3 * cfg.Timeout
	}
	if cfg.NowFunc == nil {
		cfg.NowFunc = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Worker{
		cfg:    cfg,
		client: cfg.Client,
		retry:  worker.NewRetry(cfg.MaxAttempts, cfg.RetryInitialInterval, cfg.RetryMaxInterval, cfg.RandFunc),
		batch:  store.NewBatcher(cfg.Store.CompleteEffects),
		log:    cfg.Logger.With("component", "outbox"),
	}
	if w.client == nil {
		w.client = NewClient(ClientConfig{
			// Each attempt is bounded by its effect's timeout (timeoutOf); the client's
			// is the ceiling of them all.
			Timeout:         max(cfg.Timeout, workflow.MaxEffectTimeout),
			Guard:           AddressGuard{Allow: cfg.AllowNets},
			MaxConnsPerHost: cfg.Concurrency,
		})
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	w.m = m
	w.svc = worker.New(worker.Config[claimed]{
		Name:         "effects",
		WorkerID:     cfg.WorkerID,
		Listener:     cfg.Store,
		Topic:        store.TopicEffects,
		ClaimFunc:    w.claim,
		ProcessFunc:  w.deliver,
		KeyFunc:      func(c claimed) string { return c.WorkflowType },
		KeyShare:     cfg.ConcurrencyPerType,
		Concurrency:  cfg.Concurrency,
		BatchSize:    cfg.BatchSize,
		Lease:        cfg.Lease,
		PollInterval: cfg.PollInterval,
		NowFunc:      cfg.NowFunc,
		Logger:       cfg.Logger,
	})
	return w, nil
}

// WorkerID returns the locked_by value of this worker's claims.
func (w *Worker) WorkerID() string { return w.svc.WorkerID() }

// Start starts delivering in the background until Stop, or until ctx ends (which also
// cancels deliveries in flight). Errors: starting twice.
func (w *Worker) Start(ctx context.Context) error { return w.svc.Start(ctx) }

// Stop stops claiming and waits for the deliveries in flight; when ctx ends first they
// are cancelled and their effects are claimed again after their leases expire. It
// returns ctx's error in that case.
func (w *Worker) Stop(ctx context.Context) error {
	err := w.svc.Stop(ctx)
	if t, ok := w.client.Transport.(*http.Transport); ok && w.cfg.Client == nil {
		t.CloseIdleConnections()
	}
	return err
}

// RunOnce delivers the effects due now (one batch) and waits for them; it returns how
// many it claimed. Tests with an injected clock use it instead of Start.
func (w *Worker) RunOnce(ctx context.Context) (int, error) { return w.svc.RunOnce(ctx) }

func (w *Worker) now() time.Time { return w.cfg.NowFunc().UTC().Truncate(time.Microsecond) }

// message is the Standard Webhooks payload of one attempt.
type message struct {
	Type      string      `json:"type"`
	Timestamp time.Time   `json:"timestamp"`
	Data      messageData `json:"data"`
}

type messageData struct {
	EffectID     string          `json:"effect_id"`
	Effect       string          `json:"effect"`
	Key          string          `json:"key,omitempty"` // the element's key, for an effect of a for_each
	WorkflowType string          `json:"workflow_type"`
	WorkflowID   string          `json:"workflow_id"`
	Attempt      int             `json:"attempt"`
	Payload      json.RawMessage `json:"payload"`
}

// response is what a receiver's 2xx body may carry.
type response struct {
	Input json.RawMessage `json:"input"`
}

// outcome is what an attempt came to, before it is recorded.
type outcome struct {
	attempt    store.Attempt
	status     string // next effect status
	retryAfter time.Duration
	gone       bool
	route      *workflow.Input
	send       *store.ExecuteParams // a send effect's input, decided on its target
}

// claimed is a claimed effect with its type's webhook endpoint, read with the claim
// (hookErr when the claim returned none for a webhook effect).
type claimed struct {
	store.Effect
	hook    store.Webhook
	hookErr error
}

// claim claims due effects with the endpoint of each of their workflow types, which the
// store reads with the claim: the endpoint the claim found active, without a round trip
// of its own.
func (w *Worker) claim(ctx context.Context, p store.ClaimParams) ([]claimed, error) {
	c, err := w.cfg.Store.ClaimEffects(ctx, p)
	if err != nil {
		return nil, err
	}
	out := make([]claimed, len(c.Effects))
	for i, e := range c.Effects {
		out[i].Effect = e
		if e.Name == engine.EndChildrenEffect || e.SendType != "" {
			continue // delivered without a webhook
		}
		if hook, ok := c.Endpoints[e.WorkflowType]; ok {
			out[i].hook = hook
		} else {
			out[i].hookErr = fmt.Errorf("webhook of %s: %w", e.WorkflowType, store.ErrNotFound)
		}
	}
	return out, nil
}

// deliver makes one attempt of a claimed effect and records it. It returns the time of
// the retry it scheduled, if any, so the loop wakes for it. Once the attempt is made it
// releases its slot: the recording (a routed decision's, often) waits for its batch
// while the slot delivers the next effect.
func (w *Worker) deliver(ctx context.Context, c claimed, release func()) time.Time {
	e := c.Effect
	log := w.log.With("effect_id", e.ID, "workflow_type", e.WorkflowType, "workflow_id", e.WorkflowID,
		"effect", e.Name, "attempt", e.Attempts+1)
	start := w.now()
	var o outcome
	switch {
	case e.Name == engine.EndChildrenEffect:
		o = w.endChildren(ctx, e, start)
	case e.SendType != "":
		o = w.send(e, start)
	default:
		o = w.attempt(ctx, c, start)
	}
	if ctx.Err() != nil {
		// Hard stop: record nothing; the lease expires and another worker retries.
		return time.Time{}
	}
	release()
	if o.gone {
		if err := w.cfg.Store.SetWebhookStatus(ctx, e.WorkflowType, store.WebhookDisabled, w.now()); err != nil &&
			!errors.Is(err, store.ErrNotFound) {
			log.Error("disable webhook", "error", err)
		} else {
			log.Warn("receiver answered 410 Gone: webhook disabled; effects wait until it is enabled again")
		}
	}
	w.m.observeAttempt(o)

	p := store.CompleteEffectParams{
		EffectID: e.ID,
		Worker:   w.svc.WorkerID(),
		Attempt:  o.attempt,
		Status:   o.status,
		Now:      w.now(),
	}
	retry := w.retryOf(e)
	var retryAt time.Time
	if o.status == store.EffectPending {
		retryAt = w.nextAttempt(retry, e.Attempts+1, o)
		p.NextAttemptAt = retryAt
	}
	if (o.route != nil || o.send != nil) && e.ChainDepth >= w.cfg.MaxChainDepth {
		// A receiver answering every effect with an input whose decision emits more
		// effects loops forever (and multiplies), and so do instances sending each
		// other inputs; the chain stops here, and says why.
		p.Status = store.EffectDead
		p.Attempt.Error = fmt.Sprintf("routed input not applied: %d routed answers in a row led to this effect, the limit (IRONFLOW_MAX_CHAIN_DEPTH); a loop between the workflow and its receiver, or between instances?", e.ChainDepth)
		o.route, o.send = nil, nil
	}
	if o.send != nil {
		p.Route = o.send
	}
	if o.route != nil {
		rp, err := w.cfg.Engine.Params(e.WorkflowType, e.WorkflowID, *o.route,
			engine.ExecuteOptions{IdempotencyKey: e.ID, Source: store.SourceEffect, ChainDepth: e.ChainDepth + 1})
		if err != nil {
			p.Status, p.Attempt.Error = store.EffectDead, "routed input is invalid: "+err.Error()
		} else {
			p.Route = &rp
		}
	}
	w.addOnDead(e, &p)
	err := w.batch.Complete(ctx, p)
	for tries := 0; tries < 2 && err != nil && p.Route != nil &&
		!errors.Is(err, store.ErrLeaseLost) && !errors.Is(err, store.ErrCancelled); tries++ {
		if p.Status == store.EffectDead {
			// The effect's on_dead input could not run. A bad one is noted and the
			// effect dies without it; on a system failure nothing is recorded, and the
			// effect is claimed again once its lease ends, its on_dead with it.
			if !engine.IsInputError(err) && !errors.Is(err, workflow.ErrInvalidDefinition) &&
				!errors.Is(err, engine.ErrInstanceNotFound) {
				break
			}
			p.Route = nil
			p.Attempt.Error = strings.TrimPrefix(p.Attempt.Error+"; on_dead input not run: "+err.Error(), "; ")
		} else {
			// The receiver answered 2xx but its input could not be applied. Record why: a
			// bad input dead-letters the effect, a system failure retries it (the receiver
			// will see it again; its input is keyed by the effect id). A send whose target
			// refused its input, or could not decide it, failed this attempt: it is retried
			// by its policy, whatever the reason (the target may be defined, or move to a
			// state that accepts the input, meanwhile).
			p.Route = nil
			if engine.IsInputError(err) && e.SendType == "" {
				p.Status, p.Attempt.Error = store.EffectDead, "routed input is invalid: "+err.Error()
			} else {
				what := "routing the response's input"
				if e.SendType != "" {
					what = "send to " + e.SendType + "/" + e.SendID
				}
				p.Attempt.Error = what + " failed: " + err.Error()
				p.Status = store.EffectPending
				if retry.Last(e.Attempts + 1) {
					p.Status = store.EffectDead
				} else {
					retryAt = w.nextAttempt(retry, e.Attempts+1, o)
					p.NextAttemptAt = retryAt
				}
			}
			w.addOnDead(e, &p)
		}
		err = w.cfg.Store.CompleteEffect(ctx, p)
	}
	result := resultOf(p.Status, o.gone)
	switch {
	case errors.Is(err, store.ErrCancelled):
		result, retryAt = ResultCancelled, time.Time{}
		log.Info("effect was cancelled while in flight: attempt recorded, its answer not routed, no retry")
	case errors.Is(err, store.ErrLeaseLost):
		result, retryAt = ResultLeaseLost, time.Time{}
		log.Warn("lease lost: another worker owns the effect; attempt not recorded", "error", err)
	case err != nil:
		result, retryAt = ResultError, time.Time{}
		log.Error("record attempt", "error", err)
	case p.Status == store.EffectDead:
		log.Warn("effect is dead", "status_code", p.Attempt.StatusCode, "error", p.Attempt.Error,
			"on_dead", p.Route != nil)
	case p.Status == store.EffectPending && !o.gone:
		log.Info("delivery failed; will retry", "status_code", p.Attempt.StatusCode, "error", p.Attempt.Error,
			"next_attempt_at", p.NextAttemptAt)
	default:
		log.Debug("delivered", "status_code", p.Attempt.StatusCode)
	}
	w.m.deliveries.WithLabelValues(result).Inc()
	if result == ResultDelivered {
		w.m.lag.Observe(w.now().Sub(e.NextAttemptAt).Seconds())
	}
	return retryAt
}

func resultOf(status string, gone bool) string {
	switch {
	case gone:
		return ResultGone
	case status == store.EffectDelivered:
		return ResultDelivered
	case status == store.EffectDead:
		return ResultDead
	}
	return ResultRetry
}

// addOnDead makes the on_dead input of e, when it declares one, the Route of a
// completion p that marks it dead, so the input runs in the transaction that does.
func (w *Worker) addOnDead(e store.Effect, p *store.CompleteEffectParams) {
	if p.Status != store.EffectDead || e.OnDead == "" {
		return
	}
	rp, err := w.cfg.Engine.OnDeadParams(e, p.Attempt)
	if err != nil {
		p.Attempt.Error = strings.TrimPrefix(p.Attempt.Error+"; on_dead input not run: "+err.Error(), "; ")
		return
	}
	p.Route = &rp
}

// retryOf is the retry policy of e: its own budget and backoff bounds, the worker's
// settings where it has none.
func (w *Worker) retryOf(e store.Effect) worker.Retry {
	r := w.retry
	if e.MaxAttempts > 0 {
		r.MaxAttempts = e.MaxAttempts
	}
	if e.InitialInterval > 0 {
		r.Initial = e.InitialInterval
	}
	if e.MaxInterval > 0 {
		r.Max = e.MaxInterval
	}
	r.Max = max(r.Max, r.Initial)
	return r
}

// timeoutOf bounds one attempt of e: its own timeout, or the worker's.
func (w *Worker) timeoutOf(e store.Effect) time.Duration {
	if e.Timeout > 0 {
		return e.Timeout
	}
	return w.cfg.Timeout
}

// nextAttempt returns when the retry after the n-th failed attempt is due under retry:
// the jittered backoff, or the receiver's Retry-After when it named one, never beyond
// the maximum interval.
func (w *Worker) nextAttempt(retry worker.Retry, n int, o outcome) time.Time {
	d := retry.Delay(n)
	if o.retryAfter > 0 {
		d = min(o.retryAfter, retry.Max)
	}
	if o.gone {
		d = 0 // waits for the endpoint to be enabled again, not for time
	}
	return w.now().Add(d)
}

// send makes the attempt of a send effect: its input is decided on the target in the
// transaction that records the attempt (the completion's Route), so the attempt is
// delivered unless that decision fails (deliver). It records nothing.
func (w *Worker) send(e store.Effect, start time.Time) outcome {
	o := outcome{status: store.EffectDelivered, attempt: store.Attempt{EffectID: e.ID, StartedAt: start}}
	rp, err := w.cfg.Engine.SendParams(e)
	if err != nil {
		o.status, o.attempt.Error = store.EffectDead, "send is invalid: "+err.Error()
		return o
	}
	o.send = &rp
	return o
}

// endChildren makes the attempt of an ending parent's EndChildrenEffect: it
// terminates the running children that end with it (Engine.EndChildren), under the
// effect's timeout. What it terminated stays terminated when the attempt fails; the
// next attempt goes on with the rest.
func (w *Worker) endChildren(ctx context.Context, e store.Effect, start time.Time) outcome {
	o := outcome{status: store.EffectDelivered, attempt: store.Attempt{EffectID: e.ID, StartedAt: start}}
	t0 := time.Now()
	defer func() { o.attempt.Duration = time.Since(t0) }()
	ctx, cancel := context.WithTimeout(ctx, w.timeoutOf(e))
	defer cancel()
	n, err := w.cfg.Engine.EndChildren(ctx, e)
	o.attempt.Response = fmt.Sprintf("%d children terminated", n)
	if err != nil {
		o.status, o.attempt.Error = store.EffectPending, clean("terminating the children failed: "+err.Error())
		if w.retryOf(e).Last(e.Attempts + 1) {
			o.status = store.EffectDead
		}
	}
	return o
}

// attempt POSTs the effect once, to the endpoint read with its claim, and classifies the
// result; it records nothing.
func (w *Worker) attempt(ctx context.Context, c claimed, start time.Time) (o outcome) {
	e := c.Effect
	o = outcome{status: store.EffectPending, attempt: store.Attempt{EffectID: e.ID, StartedAt: start}}
	t0 := time.Now()
	defer func() { o.attempt.Duration = time.Since(t0) }()
	// The effect's own timeout bounds the whole attempt, body included; ctx itself
	// ends only on a hard stop, which deliver tells apart.
	ctx, cancel := context.WithTimeout(ctx, w.timeoutOf(e))
	defer cancel()
	retry := w.retryOf(e)
	fail := func(msg string) outcome {
		o.attempt.Error = clean(msg)
		if retry.Last(e.Attempts + 1) {
			o.status = store.EffectDead
		}
		return o
	}

	hook, err := c.hook, c.hookErr
	if err != nil {
		return fail("no webhook endpoint: " + err.Error())
	}
	secrets := make([]string, 0, len(hook.Secrets))
	for _, s := range hook.Secrets {
		if s.ActiveAt(start) {
			secrets = append(secrets, s.Secret)
		}
	}
	signer, err := NewSigner(secrets...)
	if err != nil {
		return fail("webhook secret: " + err.Error())
	}
	payload := e.Payload
	if len(payload) == 0 {
		payload = json.RawMessage(`{}`)
	}
	body, err := json.Marshal(message{
		Type:      e.WorkflowType + "." + e.Name,
		Timestamp: start.Truncate(time.Second),
		Data: messageData{
			EffectID:     e.ID,
			Effect:       e.Name,
			Key:          e.Key,
			WorkflowType: e.WorkflowType,
			WorkflowID:   e.WorkflowID,
			Attempt:      e.Attempts + 1,
			Payload:      payload,
		},
	})
	if err != nil {
		return fail("encode message: " + err.Error())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(body))
	if err != nil {
		return fail("build request: " + err.Error())
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ironflow-webhooks/1")
	req.Header.Set("webhook-id", e.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(start.Unix(), 10))
	req.Header.Set("webhook-signature", signer.Sign(e.ID, start, body))

	resp, err := w.client.Do(req)
	if err != nil {
		return fail(transportError(err))
	}
	defer resp.Body.Close()
	o.attempt.StatusCode = resp.StatusCode
	raw, readErr := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	truncated := len(raw) > MaxResponseBytes
	if truncated {
		raw = raw[:MaxResponseBytes]
	}
	o.attempt.Response = clean(string(raw[:min(len(raw), MaxRecordedResponse)]))

	switch code := resp.StatusCode; {
	case code == http.StatusGone:
		o.gone = true
		o.attempt.Error = "410 Gone: webhook endpoint disabled"
		return o
	case code < 200 || code > 299:
		if ra, ok := worker.RetryAfter(resp.Header.Get("Retry-After"), w.now()); ok {
			o.retryAfter = max(ra, time.Millisecond)
		}
		msg := "unexpected status " + resp.Status
		if code >= 300 && code < 400 {
			msg += " (redirects are not followed)"
		}
		return fail(msg)
	case readErr != nil:
		return fail("read response: " + transportError(readErr))
	}

	o.status = store.EffectDelivered
	if truncated {
		o.attempt.Error = fmt.Sprintf("response exceeds %d bytes: read up to the cap, not routed", MaxResponseBytes)
		return o
	}
	var r response
	if json.Unmarshal(raw, &r) != nil || len(r.Input) == 0 || string(r.Input) == "null" {
		return o // any other 2xx body is recorded and ignored
	}
	var in workflow.Input
	dec := json.NewDecoder(bytes.NewReader(r.Input))
	if err := dec.Decode(&in); err != nil || in.Type == "" {
		o.status = store.EffectDead
		o.attempt.Error = `routed input is invalid: "input" must be an object {"type": "...", "data": {...}}`
		return o
	}
	o.route = &in
	return o
}

// transportError describes a failed request without the URL (it may carry
// credentials), naming timeouts and refused addresses plainly.
func transportError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	case errors.Is(err, ErrForbiddenAddress):
		return err.Error() + " (IRONFLOW_WEBHOOK_ALLOW_NETS can allow it)"
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return "timeout: " + err.Error()
	}
	return err.Error()
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// clean makes s storable as text everywhere: valid UTF-8 without NUL bytes.
func clean(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ReplaceAll(s, "\x00", "")
}
