package http

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/engine"
	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/workflow"
)

func TestProblemFor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err    error
		status int
		typ    string
	}{
		{engine.ErrTypeNotFound, 404, "type_not_found"},
		{engine.ErrInstanceNotFound, 404, "workflow_not_found"},
		{store.ErrNotFound, 404, "not_found"},
		{errRouteNotFound, 404, "not_found"},
		{errMethodNotAllowed, 405, "method_not_allowed"},
		{errMalformed, 400, "malformed_request"},
		{engine.ErrInvalidID, 400, "invalid_id"},
		{engine.ErrInvalidArgument, 400, "invalid_argument"},
		{store.ErrInvalidCursor, 400, "invalid_cursor"},
		{errUnauthorized, 401, "unauthorized"},
		{errBodyTooLarge, 413, "body_too_large"},
		{errRateLimited, 429, "rate_limited"},
		{errUnsupportedMediaType, 415, "unsupported_media_type"},
		{store.ErrUniqueKeyConflict, 409, "unique_key_conflict"},
		{store.ErrWrongStatus, 409, "wrong_status"},
		{store.ErrVersionMismatch, 412, "version_mismatch"},
		{workflow.ErrInvalidDefinition, 422, "invalid_definition"},
		{workflow.ErrUnknownInput, 422, "unknown_input"},
		{workflow.ErrInvalidInput, 422, "invalid_input"},
		{workflow.ErrEvaluation, 422, "evaluation_failed"},
		{store.ErrIdempotencyMismatch, 422, "idempotency_key_reused"},
		{errInvalidRequest, 422, "invalid_request"},
		{errNotReady, 503, "not_ready"},
		{store.ErrUnavailable, 503, "unavailable"},
		{context.DeadlineExceeded, 503, "unavailable"},
		{workflow.ErrInvalidState, 500, "internal"},
		{errors.New("boom"), 500, "internal"},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			t.Parallel()
			p, internal := problemFor(fmt.Errorf("context: %w", tc.err))
			require.Equal(t, tc.status, p.Status)
			require.Equal(t, tc.typ, p.Type)
			require.NotEmpty(t, p.Title)
			require.NotEmpty(t, p.Detail)
			require.Equal(t, tc.status == http.StatusInternalServerError, internal)
			if internal {
				require.NotContains(t, p.Detail, "boom", "internal errors are not shown to clients")
			}
		})
	}
}

func TestProblemForValidationErrors(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("put: %w", &workflow.ValidationError{Err: workflow.ErrInvalidDefinition, Errors: []workflow.FieldError{
		{Path: "/states/a/on/go/to", Message: "unknown state \"b\""},
		{Path: "/initial_state", Message: "unknown state"},
	}})
	p, _ := problemFor(err)
	require.Equal(t, 422, p.Status)
	require.Equal(t, []FieldError{
		{Path: "/states/a/on/go/to", Message: "unknown state \"b\""},
		{Path: "/initial_state", Message: "unknown state"},
	}, p.Errors)

	p, _ = problemFor(fmt.Errorf("input type \"x\": %w", workflow.ErrUnknownInput))
	require.Equal(t, "/type", p.Errors[0].Path)
}

func TestIfMatchVersion(t *testing.T) {
	t.Parallel()
	for h, want := range map[string]int64{`"0"`: 0, `"12"`: 12, `7`: 7, ` "3" `: 3} {
		v, err := ifMatchVersion(h)
		require.NoError(t, err, h)
		require.Equal(t, want, *v, h)
	}
	v, err := ifMatchVersion("")
	require.NoError(t, err)
	require.Nil(t, v)
	for _, h := range []string{`"-1"`, `W/"1"`, `"a"`, `*`, `"1", "2"`} {
		_, err := ifMatchVersion(h)
		require.ErrorIs(t, err, errMalformed, h)
	}
}

func TestIsJSONMediaType(t *testing.T) {
	t.Parallel()
	for ct, want := range map[string]bool{
		"application/json":                    true,
		"application/json; charset=utf-8":     true,
		"Application/JSON; charset=UTF-8":     true,
		"application/merge-patch+json":        true,
		"application/problem+json":            true,
		"application/json; charset=latin1":    false,
		"text/json":                           false,
		"text/plain":                          false,
		"":                                    false,
		"application/x-www-form-urlencoded":   false,
		"application/jsonx":                   false,
		"application/json; charset=\"utf-8\"": true,
	} {
		require.Equal(t, want, isJSONMediaType(ct), ct)
	}
}

func TestContainsNULEscape(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]bool{
		`{"a":"\u0000"}`:   true,
		`{"\u0000":1}`:     true,
		`{"a":"x\\u0000"}`: false, // an escaped backslash, then the text u0000
		`{"a":"\\\u0000"}`: true,
		`{"a":"\u00001"}`:  true,
		`{"a":"\u0001"}`:   false,
		`{"a":"u0000"}`:    false,
		`{"a":"\n\u0000"}`: true,
		`{"a":"\""}`:       false,
	} {
		require.Equal(t, want, containsNULEscape([]byte(body)), body)
	}
}

func TestClipBoundsEchoedText(t *testing.T) {
	t.Parallel()
	require.Equal(t, "short", clip("short"))
	long := strings.Repeat("é", maxProblemText) // two bytes each
	got := clip(long)
	require.True(t, utf8.ValidString(got))
	require.LessOrEqual(t, len(got), maxProblemText+len("… (truncated)"))
	require.True(t, strings.HasSuffix(got, "… (truncated)"))

	p, internal := problemFor(fmt.Errorf("%w: %s", workflow.ErrUnknownInput, strings.Repeat("x", 1<<20)))
	require.False(t, internal)
	require.Less(t, len(p.Detail), 2*maxProblemText)
	require.Less(t, len(p.Errors[0].Message), 2*maxProblemText)
}

func TestJSONDepth(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]int{
		`1`:                       0,
		`{}`:                      1,
		`{"a":[{"b":[]}]}`:        4,
		`{"a":"[[[[{{{{"}`:        1,
		`{"a":"\"[[[[","b":[[]]}`: 3,
		`["\\",[["\\\""]]]`:       3,
	} {
		require.Equal(t, want, jsonDepth([]byte(body)), body)
	}
	deep := strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1)
	require.Greater(t, jsonDepth([]byte(deep)), maxJSONDepth)
}
