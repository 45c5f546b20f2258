package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
)

// testDecideGetsDefinition: the DecideFunc is handed the definition its decision is made
// by, read in the decision's transaction: the latest version for an instance that does
// not exist yet, the pinned version afterwards, nil for a type without a definition.
func testDecideGetsDefinition(t *testing.T, e *env) {
	for _, body := range []string{`{"v":1}`, `{"v":2}`} {
		sum := sha256.Sum256([]byte(body))
		_, _, err := e.s.PutDefinition(e.ctx, "order", json.RawMessage(body), hex.EncodeToString(sum[:]), e.now)
		require.NoError(t, err)
	}
	var seen *store.Definition
	capture := func(typ, id string) store.DecideFunc {
		return func(ctx context.Context, cur *store.Instance, def *store.Definition) (*store.Write, error) {
			seen = def
			// decideStep pins a new instance to version 1, older than the latest.
			return decideStep(typ, id, step{At: e.now})(ctx, cur, def)
		}
	}

	_, err := e.s.Execute(e.ctx, store.ExecuteParams{WorkflowType: "order", WorkflowID: "a", Decide: capture("order", "a")})
	require.NoError(t, err)
	require.NotNil(t, seen)
	require.Equal(t, 2, seen.Version, "a new instance is decided by the latest version")
	require.JSONEq(t, `{"v":2}`, string(seen.Body))

	_, err = e.s.Execute(e.ctx, store.ExecuteParams{WorkflowType: "order", WorkflowID: "a", Decide: capture("order", "a")})
	require.NoError(t, err)
	require.NotNil(t, seen)
	require.Equal(t, 1, seen.Version, "an existing instance is decided by the version it is pinned to")

	_, err = e.s.Execute(e.ctx, store.ExecuteParams{WorkflowType: "ghost", WorkflowID: "a", Decide: capture("ghost", "a"), DryRun: true})
	require.NoError(t, err)
	require.Nil(t, seen, "a type without a definition gets nil")
}
