package sqlstore

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ironflow/ironflow/internal/store"
)

// Filter builds the WHERE clause of a list: conditions ANDed, each parameter numbered,
// Mark then its number ($1 in PostgreSQL, ?1 in SQLite), so that one argument may stand
// in several places. Time is how the backend passes a time.
type Filter struct {
	Mark  string
	Time  func(time.Time) any
	Conds []string
	Args  []any
	// ByCreated pages by (created_at, rid) instead of rid: a list with a creation time
	// range, read through the index on (created_at, rid), so that a page costs its rows
	// wherever the range lies (docs/decisions/0024-data-growth.md).
	ByCreated bool
	// RowCond, when set, is a condition every row of the table meets that lets the
	// database find the cursor's row through a partial index on rid (ByCreated).
	RowCond string
	// Key holds the conditions among Conds that a (type, id) key answers alone: the
	// type and an id prefix's range (Instances, IDPrefix with byteOrder), so that a
	// backend can read a prefix's rows from that key first.
	Key []string
}

// Add appends cond, in which "?" stands for the parameter arg.
func (f *Filter) Add(cond string, arg any) {
	f.Conds = append(f.Conds, strings.Replace(cond, "?", f.Next(arg), 1))
}

// AddIf appends cond unless arg is "".
func (f *Filter) AddIf(cond, arg string) {
	if arg != "" {
		f.Add(cond, arg)
	}
}

// AddStatus appends status = value unless value is "". One of the store's own statuses
// (known) goes into the SQL as a literal rather than a parameter, so that a planner can
// match the partial indexes on status even with a generic plan for the statement.
func (f *Filter) AddStatus(value string, known ...string) {
	if slices.Contains(known, value) {
		f.Conds = append(f.Conds, "status = '"+value+"'")
		return
	}
	f.AddIf("status = ?", value)
}

// Created selects created_at in [after, before); a zero time does not filter.
func (f *Filter) Created(after, before time.Time) {
	f.ByCreated = !after.IsZero() || !before.IsZero()
	if !after.IsZero() {
		f.Add("created_at >= ?", f.Time(after))
	}
	if !before.IsZero() {
		f.Add("created_at < ?", f.Time(before))
	}
}

// IDPrefix selects ids starting with prefix. Where the database orders ids byte by byte
// (byteOrder), a range over the (type, id) key does it exactly; under a linguistic
// collation a range would miss ids (en_US sorts "a-z" after "a."), so the exact LIKE
// decides.
func (f *Filter) IDPrefix(prefix string, byteOrder bool) {
	if prefix == "" {
		return
	}
	if !byteOrder {
		f.Add(`id LIKE ? ESCAPE '\'`, LikePrefix(prefix))
		return
	}
	lo, hi, bounded := IDRange(prefix)
	f.AddKey("id >= ?", lo)
	if bounded {
		f.AddKey("id < ?", hi)
	}
}

// AddKey appends cond, as Add does, and records it among the key conditions (Key).
func (f *Filter) AddKey(cond string, arg any) {
	f.Add(cond, arg)
	f.Key = append(f.Key, f.Conds[len(f.Conds)-1])
}

// Where is the WHERE clause, "" without conditions.
func (f *Filter) Where() string {
	if len(f.Conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(f.Conds, " AND ")
}

// Next returns the placeholder of the next parameter, arg.
func (f *Filter) Next(arg any) string {
	f.Args = append(f.Args, arg)
	return f.Mark + strconv.Itoa(len(f.Args))
}

// Keyset is the query of f's rows of table after the row whose rid is after, oldest
// first, up to limit rows, each with its rid before columns; and its arguments. Oldest
// first is rid order, or (created_at, rid) order with ByCreated: rids are handed out in
// the order rows are inserted, which follows their creation times but for the
// transactions that overlap.
func (f Filter) Keyset(table, columns string, after int64, limit int) (string, []any) {
	order := "rid"
	switch {
	case !f.ByCreated:
		f.Add("rid > ?", after)
	case after > 0:
		rid := f.Next(after)
		row := "rid = " + rid
		if f.RowCond != "" {
			row += " AND " + f.RowCond
		}
		f.Conds = append(f.Conds, "(created_at, rid) > ((SELECT created_at FROM "+table+" WHERE "+row+"), "+rid+")")
		fallthrough
	default:
		order = "created_at, rid"
	}
	return `SELECT rid, ` + columns + ` FROM ` + table + f.Where() + ` ORDER BY ` + order + ` LIMIT ` + f.Next(limit), f.Args
}

// Instances adds the conditions of p; byteOrder as in IDPrefix.
func (f *Filter) Instances(p store.ListInstancesParams, byteOrder bool) {
	if p.Type != "" {
		f.AddKey("type = ?", p.Type)
	}
	f.AddIf("state_name = ?", p.State)
	f.AddStatus(p.Status, store.StatusRunning, store.StatusCompleted, store.StatusFailed, store.StatusTerminated)
	f.IDPrefix(p.IDPrefix, byteOrder)
	f.Created(p.CreatedAfter, p.CreatedBefore)
	if p.ParentType != "" {
		// The literal term lets a planner use the partial index instances_parent.
		f.Conds = append(f.Conds, "parent_workflow_type <> ''")
		f.Add("parent_workflow_type = ?", p.ParentType)
		f.Add("parent_workflow_id = ?", p.ParentID)
	}
	f.AddIf("on_parent_end = ?", p.OnParentEnd)
}

// Inputs adds the conditions of one instance's inputs.
func (f *Filter) Inputs(typ, id string) {
	f.Add("workflow_type = ?", typ)
	f.Add("workflow_id = ?", id)
}

func (f *Filter) Effects(p store.ListEffectsParams) {
	f.AddStatus(p.Status, store.EffectPending, store.EffectDelivered, store.EffectDead, store.EffectCancelled)
	f.AddIf("workflow_type = ?", p.WorkflowType)
	f.AddIf("workflow_id = ?", p.WorkflowID)
}

func (f *Filter) Timers(p store.ListTimersParams) {
	f.AddStatus(p.Status, store.TimerPending, store.TimerFired, store.TimerCancelled, store.TimerDead)
	f.AddIf("workflow_type = ?", p.WorkflowType)
	f.AddIf("workflow_id = ?", p.WorkflowID)
}

// CountQuery is the statement that counts the instances of each status that match p,
// at most p.Limit rows each (running, completed, failed, terminated), each count through
// the status's partial index with the conditions base first; and its arguments.
func (f Filter) CountQuery(p store.CountInstancesParams, base ...string) (string, []any) {
	f.AddIf("type = ?", p.Type)
	f.Created(p.CreatedAfter, p.CreatedBefore)
	limit := f.Next(p.Limit)
	var sel []string
	for _, status := range []string{store.StatusRunning, store.StatusCompleted, store.StatusFailed, store.StatusTerminated} {
		conds := append(append(slices.Clip(base), "status = '"+status+"'"), f.Conds...)
		sel = append(sel, `(SELECT count(*) FROM (SELECT 1 FROM instances WHERE `+strings.Join(conds, " AND ")+
			` LIMIT `+limit+`) c)`)
	}
	return `SELECT ` + strings.Join(sel, ", "), f.Args
}
