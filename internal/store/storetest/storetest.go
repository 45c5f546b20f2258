// Package storetest is the conformance suite every store.Store implementation must pass.
// An implementation's tests call Run (or RunWith) with a function that opens a fresh,
// empty, migrated store for one test.
//
// The suite tests only what the store.Store contract promises. Its DecideFuncs mimic the
// engine: they build a Write from the current instance the way internal/engine does
// (one event per accepted input, the snapshot folded with a JSON merge patch), but know
// nothing of workflow definitions.
package storetest

import (
	"testing"

	"github.com/ironflow/ironflow/internal/store"
)

// NewStoreFunc opens a fresh, empty, migrated store for one test and registers its
// cleanup with t.
type NewStoreFunc func(t *testing.T) store.Store

// Run runs the whole conformance suite against the stores newStore opens. Every test
// runs in parallel on its own store.
func Run(t *testing.T, newStore NewStoreFunc) {
	t.Helper()
	tests := []testCase{
		{"Definitions", testDefinitions},
		{"ExecuteAppendAndLoad", testExecuteAppendAndLoad},
		{"GaplessSeq", testGaplessSeq},
		{"RejectedFirstInput", testRejectedFirstInput},
		{"AlreadyCompleted", testAlreadyCompleted},
		{"Idempotency", testIdempotency},
		{"ExpectedVersion", testExpectedVersion},
		{"DryRun", testDryRun},
		{"DecideError", testDecideError},
		{"DecideGetsDefinition", testDecideGetsDefinition},
		{"UniqueKey", testUniqueKey},
		{"SnapshotEqualsReplay", testSnapshotEqualsReplay},
		{"ConcurrentInputsOneInstance", testConcurrentInputsOneInstance},
		{"DifferentInstances", testDifferentInstances},
		{"EffectsAtomic", testEffectsAtomic},
		{"ClaimNeedsActiveWebhook", testClaimNeedsActiveWebhook},
		{"ClaimLimit", testClaimLimit},
		{"ClaimExcludeTypes", testClaimExcludeTypes},
		{"ClaimReadsEndpoints", testClaimReadsEndpoints},
		{"ClaimAcrossTypesInDueOrder", testClaimAcrossTypesInDueOrder},
		{"ClaimLease", testClaimLease},
		{"EffectAttemptsAndRetry", testEffectAttemptsAndRetry},
		{"EffectRoute", testEffectRoute},
		{"EffectRouteReplay", testEffectRouteReplay},
		{"EffectRouteError", testEffectRouteError},
		{"EffectBatch", testEffectBatch},
		{"TimerScheduleReplace", testTimerScheduleReplace},
		{"TimersInWrite", testTimersInWrite},
		{"TimerClaimDue", testTimerClaimDue},
		{"TimerFireRoute", testTimerFireRoute},
		{"TimerCancelledWhileClaimed", testTimerCancelledWhileClaimed},
		{"TimerRearmsOwnKey", testTimerRearmsOwnKey},
		{"TimerRetryAndDead", testTimerRetryAndDead},
		{"TimerStaleWorker", testTimerStaleWorker},
		{"TimerBatch", testTimerBatch},
		{"TimerBatchLarge", testTimerBatchLarge},
		{"RoutedBatches", testRoutedBatches},
		{"InputBatches", testInputBatches},
		{"ConcurrentInputsBatched", testConcurrentInputsBatched},
		{"ClaimAtLeaseEnd", testClaimAtLeaseEnd},
		{"RetryWithoutNextAttempt", testRetryWithoutNextAttempt},
		{"RotateToCurrentSecret", testRotateToCurrentSecret},
		{"InstanceVersionMustBeLastSeq", testInstanceVersionMustBeLastSeq},
		{"CompletedAtFilledIn", testCompletedAtFilledIn},
		{"ResponseByteForByte", testResponseByteForByte},
		{"TimerClaimAhead", testTimerClaimAhead},
		{"Terminate", testTerminate},
		{"CancelKeepsOwnEffects", testCancelKeepsOwnEffects},
		{"EffectPolicyKept", testEffectPolicyKept},
		{"EffectItemKept", testEffectItemKept},
		{"CancelStateOnExit", testCancelStateOnExit},
		{"OnDead", testOnDead},
		{"SendKeptAndClaimed", testSendKeptAndClaimed},
		{"SendRouteCreatesChild", testSendRouteCreatesChild},
		{"ListChildren", testListChildren},
		{"CancelEnding", testCancelEnding},
		{"EndedStatuses", testEndedStatuses},
		{"Webhooks", testWebhooks},
		{"WebhookRotation", testWebhookRotation},
		{"ListInstances", testListInstances},
		{"ListInstancesByPrefixAndTime", testListInstancesByPrefixAndTime},
		{"ListInstancesByPrefixPages", testListInstancesByPrefixPages},
		{"CountInstances", testCountInstances},
		{"CancelEffect", testCancelEffect},
		{"CancelDeadTimer", testCancelDeadTimer},
		{"ListInputs", testListInputs},
		{"ListEffectsAndTimers", testListEffectsAndTimers},
		{"Listen", testListen},
		{"FeedOrder", testFeedOrder},
		{"FeedFilter", testFeedFilter},
		{"FeedListen", testFeedListen},
		{"FeedConcurrent", testFeedConcurrent},
		{"Prune", testPrune},
		{"PrunePassResumes", testPrunePassResumes},
		{"Stats", testStats},
		{"Ping", testPing},
	}
	runCases(t, newStore, tests)
}

// RunListInstancesByPrefix runs the conformance case of the id prefix filter alone: for
// a backend that has more than one way to select a prefix.
func RunListInstancesByPrefix(t *testing.T, newStore NewStoreFunc) {
	t.Helper()
	runCases(t, newStore, []testCase{{"ListInstancesByPrefixAndTime", testListInstancesByPrefixAndTime},
		{"ListInstancesByPrefixPages", testListInstancesByPrefixPages}})
}

type testCase struct {
	name string
	fn   func(t *testing.T, e *env)
}

func runCases(t *testing.T, newStore NewStoreFunc, tests []testCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newEnv(t, newStore))
		})
	}
}
