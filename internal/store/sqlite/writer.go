package sqlite

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/ironflow/ironflow/internal/store"
)

// Group commit.
//
// SQLite has one writer, so write transactions run one after another anyway; what they
// cost is mostly the commit, which appends every page the transaction dirtied to the
// WAL. Many small transactions touching the same index pages write those pages again
// and again. So every write method hands its work to one writer goroutine, which takes
// every request waiting (up to maxGroup), runs them in ONE BEGIN IMMEDIATE transaction
// with a SAVEPOINT per request, commits once and then answers each caller:
//
//   - a request that fails is rolled back to its savepoint and gets its own error; the
//     others are unaffected (they never see its partial writes);
//   - a request sees the writes of the requests before it in the group, exactly as it
//     would have seen them committed one transaction earlier;
//   - nobody is answered before the commit, so a caller never learns of a success that
//     is not durable (as durable as synchronous=NORMAL makes it), and Listen signals,
//     which callers send after their write returns, still follow the commit;
//   - a failed commit fails every successful request of the group.
//
// There is no lingering: a lone request runs at once; requests batch up only while the
// previous group is being written, which is exactly when they would have waited anyway.

// maxGroup bounds how many write requests share one transaction, so one group cannot
// keep the requests that arrive meanwhile waiting for long.
const maxGroup = 128

// Request states: the writer and the caller race to move a queued request, the writer
// to running and a caller whose ctx ended to abandoned. Whoever wins decides whether
// the request runs, so an abandoned request never writes behind its caller's back.
const (
	reqQueued int32 = iota
	reqRunning
	reqAbandoned
)

// writeFunc is one write request's work inside the group's transaction. ctx is the
// caller's context without its cancellation: an interrupted INSERT, UPDATE or DELETE
// makes SQLite roll back the whole transaction, which here would undo the other
// requests of the group. A caller that gives up is handled between requests instead.
type writeFunc func(ctx context.Context, tx *wtx) error

type writeReq struct {
	ctx   context.Context
	fn    writeFunc
	state atomic.Int32
	done  chan writeResult // buffered: the writer never blocks on a caller
}

type writeResult struct {
	err      error
	panicked bool
	panicVal any // what fn panicked with, re-panicked in the caller's goroutine
}

// errClosed answers writes after Close; mapErr wraps it with the operation.
var errClosed = fmt.Errorf("%w: store closed", store.ErrUnavailable)

// inTx runs fn in the next write group and returns once that group committed (nil) or
// failed. fn must not call the store's write methods: it runs on the writer goroutine,
// which would wait for itself. The returned error is fn's own (with decideError for a
// DecideFunc's), ctx.Err() when ctx ended before fn ran, errClosed, or the error of the
// group's BEGIN, savepoint or COMMIT.
func (d *driver) inTx(ctx context.Context, fn writeFunc) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &writeReq{ctx: ctx, fn: fn, done: make(chan writeResult, 1)}
	select {
	case d.writes <- r:
	case <-d.quit:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	var res writeResult
	select {
	case res = <-r.done:
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqAbandoned) {
			return ctx.Err()
		}
		// Already running: wait for the real outcome rather than guess it.
		res = <-r.done
	}
	if res.panicked {
		panic(res.panicVal)
	}
	return res.err
}

// writeLoop is the writer goroutine: it collects a group, runs it, and repeats until
// Close. Requests are taken from an unbuffered channel, so "every request waiting" is
// every caller blocked sending, and none can be left inside a buffer at Close.
func (d *driver) writeLoop() {
	defer close(d.loopDone)
	group := make([]*writeReq, 0, maxGroup)
	for {
		select {
		case r := <-d.writes:
			group = append(group, r)
		case <-d.quit:
			return
		}
	collect:
		for len(group) < maxGroup {
			select {
			case r := <-d.writes:
				group = append(group, r)
			default:
				break collect
			}
		}
		d.runGroup(group)
		clear(group) // let answered requests be collected
		group = group[:0]
	}
}

// runGroup runs the requests of one group in one transaction and answers every one.
func (d *driver) runGroup(group []*writeReq) {
	live := make([]*writeReq, 0, len(group))
	for _, r := range group {
		if !r.state.CompareAndSwap(reqQueued, reqRunning) {
			continue // abandoned: its caller has already returned ctx.Err()
		}
		if err := r.ctx.Err(); err != nil {
			r.done <- writeResult{err: err}
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}

	// Background: the transaction belongs to the group, not to any one caller.
	tx, err := d.w.BeginTx(context.Background(), nil)
	if err != nil {
		for _, r := range live {
			r.done <- writeResult{err: err}
		}
		return
	}
	t := d.newWtx(tx)
	results := make([]writeResult, len(live))
	var broken error // the transaction can no longer be committed
	for i, r := range live {
		results[i], broken = t.runOne(r)
		if broken != nil {
			// A savepoint statement failed, which means SQLite rolled back the whole
			// transaction (disk full, I/O error…) or the connection broke: the writes
			// of the requests before this one are gone too, and the ones after it
			// (left with a zero result) are not run.
			break
		}
	}
	var groupErr error
	if broken == nil {
		// Each caller maps a COMMIT failure as it did when the transaction was its own.
		groupErr = tx.Commit()
	} else {
		_ = tx.Rollback()
		groupErr = fmt.Errorf("%w: write group rolled back: %w", store.ErrUnavailable, broken)
	}
	if groupErr != nil {
		// Requests that failed on their own keep their error (nothing of theirs was
		// written either way); every other one, run or not, gets the group's failure.
		for i := range live {
			if results[i].err == nil && !results[i].panicked {
				results[i] = writeResult{err: groupErr}
			}
		}
	}
	for i, r := range live {
		r.done <- results[i]
	}
}

// runOne runs one request inside its savepoint. res is what its caller gets (before
// the commit is known); broken is set when the group's transaction is lost.
func (t *wtx) runOne(r *writeReq) (res writeResult, broken error) {
	ctx := context.WithoutCancel(r.ctx)
	if _, err := t.ExecContext(ctx, sqlSavepoint); err != nil {
		return writeResult{err: err}, err
	}
	res = callFn(ctx, t, r.fn)
	if res.err == nil && !res.panicked {
		// The caller gave up while its request ran: undo it, so that, as before group
		// commit, a caller whose context ended sees its error and nothing written.
		res.err = r.ctx.Err()
	}
	if res.err != nil || res.panicked {
		if _, err := t.ExecContext(ctx, sqlRollbackTo); err != nil {
			return res, err
		}
	}
	if _, err := t.ExecContext(ctx, sqlRelease); err != nil {
		return res, err
	}
	return res, nil
}

// callFn calls fn, turning a panic into a result so that the group survives it and the
// panic surfaces in the goroutine of the caller that caused it, as it did before.
func callFn(ctx context.Context, t *wtx, fn writeFunc) (res writeResult) {
	defer func() {
		if p := recover(); p != nil {
			res = writeResult{panicked: true, panicVal: p}
		}
	}()
	return writeResult{err: fn(ctx, t)}
}

// stopWriter stops the writer goroutine after the group it is running, if any. Writes
// that have not reached it get errClosed.
func (d *driver) stopWriter() {
	d.quitOnce.Do(func() { close(d.quit) })
	<-d.loopDone
}
