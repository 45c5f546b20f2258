package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/config"
	"github.com/ironflow/ironflow/internal/engine"
	"github.com/ironflow/ironflow/internal/outbox"
	"github.com/ironflow/ironflow/internal/timer"
	"github.com/ironflow/ironflow/internal/worker"
	"github.com/ironflow/ironflow/internal/workflow"
)

// TestConfigDefaultsAreTheWorkers: the defaults an operator sees (config) are the ones a
// worker falls back to for a zero field, so a worker built without the server behaves
// as the server does.
func TestConfigDefaultsAreTheWorkers(t *testing.T) {
	t.Parallel()
	require.Equal(t, outbox.DefaultTimeout, config.DefaultWebhookTimeout)
	require.Equal(t, outbox.DefaultConcurrency, config.DefaultEffectConcurrency)
	require.Equal(t, outbox.DefaultMaxChainDepth, config.DefaultMaxChainDepth)
	require.Equal(t, timer.DefaultConcurrency, config.DefaultTimerConcurrency)
	require.Equal(t, worker.DefaultMaxAttempts, config.DefaultMaxAttempts)
	require.Equal(t, worker.DefaultRetryInitialInterval, config.DefaultRetryInitialInterval)
	require.Equal(t, worker.DefaultRetryMaxInterval, config.DefaultRetryMaxInterval)
	require.Equal(t, workflow.DefaultMaxDataBytes, config.DefaultMaxDataBytes)
	require.Equal(t, workflow.DefaultMaxForEach, config.DefaultMaxForEach)
	require.Equal(t, engine.DefaultDecisionTimeout, config.DefaultDecisionTimeout)
}
