package postgres

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/postgres/pgtest"
)

// TestDefinitionsReadOncePerVersion: a decision sees the version its instance is pinned
// to, or the latest for a new instance, as before; but a body is read from the database
// only the first time this process needs its version. The test rewrites a stored body
// behind the store's back (no server ever does: versions are immutable) to tell a cached
// body from a read one.
func TestDefinitionsReadOncePerVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.MigratedDatabaseURL(t, Migrate)
	s, d := openURL(t, url)
	put := func(body string) {
		t.Helper()
		_, created, err := s.PutDefinition(ctx, "t", json.RawMessage(body), body, time.Now())
		require.NoError(t, err)
		require.True(t, created)
	}
	// decide writes an input with the definition it is given, whose body it keeps in seen.
	decide := func(seen *string) func(context.Context, *store.Instance, *store.Definition) (*store.Write, error) {
		return func(_ context.Context, cur *store.Instance, def *store.Definition) (*store.Write, error) {
			require.NotNil(t, def)
			*seen = string(def.Body)
			w := oneEffect("")
			w.Instance.DefinitionVersion = def.Version
			if cur != nil {
				w.Instance.DefinitionVersion = cur.DefinitionVersion
			}
			return w, nil
		}
	}
	// send decides an input to id on its own and returns the body of its definition.
	send := func(id string) string {
		t.Helper()
		var seen string
		_, err := s.Execute(ctx, store.ExecuteParams{WorkflowType: "t", WorkflowID: id, Decide: decide(&seen)})
		require.NoError(t, err)
		return seen
	}
	// sendBatch decides inputs to ids in one transaction and returns the bodies seen.
	sendBatch := func(ids ...string) []string {
		t.Helper()
		seen := make([]string, len(ids))
		ps := make([]store.ExecuteParams, len(ids))
		for i, id := range ids {
			ps[i] = store.ExecuteParams{WorkflowType: "t", WorkflowID: id, Decide: decide(&seen[i])}
		}
		_, errs, err := s.ExecuteBatch(ctx, ps)
		require.NoError(t, err)
		for _, err := range errs {
			require.NoError(t, err)
		}
		return seen
	}
	rewrite := func(version int, body string) {
		t.Helper()
		_, err := d.pool.Exec(ctx, `UPDATE definitions SET body = $2 WHERE type = 't' AND version = $1`, version, body)
		require.NoError(t, err)
	}

	put(`{"v":1}`)
	require.Equal(t, `{"v":1}`, send("a"), "the latest version, read")
	rewrite(1, `{"v":"1 rewritten"}`)
	require.Equal(t, `{"v":1}`, send("b"), "the same version, not read again")

	put(`{"v":2}`)
	require.Equal(t, []string{`{"v":1}`, `{"v":2}`, `{"v":1}`}, sendBatch("a", "c", "b"),
		"pinned instances keep version 1, a new one gets the new latest version, read once")
	rewrite(2, `{"v":"2 rewritten"}`)
	require.Equal(t, `{"v":2}`, send("d"))

	// A store that has read nothing reads the (rewritten) bodies.
	s, _ = openURL(t, url)
	require.Equal(t, `{"v":"1 rewritten"}`, send("a"))
	require.Equal(t, `{"v":"2 rewritten"}`, send("e"))
	require.Equal(t, []string{`{"v":"1 rewritten"}`, `{"v":"2 rewritten"}`}, sendBatch("b", "f"))
}
