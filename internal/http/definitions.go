package http

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/ironflow/ironflow/internal/engine"
)

// DefinitionDocument documents the body of PUT /v1/workflow-types/{type} for the
// OpenAPI spec; the server validates the raw JSON with workflow.Parse, which reports
// every problem with its JSON path.
type DefinitionDocument struct {
	Description  string `json:"description,omitempty" example:"Order lifecycle"`
	InitialState string `json:"initial_state" example:"new"`
	// UniqueKey is a CEL expression over the creating input; at most one running
	// instance per key.
	UniqueKey string                      `json:"unique_key,omitempty" example:"input.data.order_ref"`
	Inputs    map[string]InputDeclaration `json:"inputs"`
	States    map[string]StateDocument    `json:"states"`
}

// InputDeclaration declares one input type and the JSON Schema its data must satisfy.
type InputDeclaration struct {
	Schema map[string]any `json:"schema,omitempty" swaggertype:"object"`
}

// StateDocument is one state of a definition.
type StateDocument struct {
	Terminal bool `json:"terminal,omitempty"`
	// Timers are scheduled on entering the state and cancelled on leaving it.
	Timers []map[string]any `json:"timers,omitempty" swaggertype:"array,object"`
	// On maps an input type to one transition or a list of guarded branches
	// ({"if": CEL, "to", "event", "data", "effects", "timers", "cancel_timers"} or
	// {"reject": reason}).
	On map[string]any `json:"on,omitempty" swaggertype:"object"`
}

// handleListDefinitions lists the latest definition of every workflow type.
//
//	@ID			listWorkflowTypes
//	@Summary	List workflow types
//	@Tags		workflow-types
//	@Produce	json
//	@Produce	application/problem+json
//	@Security	BearerAuth
//	@Param		cursor	query		string								false	"next_cursor of the previous page"
//	@Param		limit	query		int									false	"page size (default 50)"	minimum(1)	maximum(500)
//	@Success	200		{object}	engine.Page[engine.DefinitionView]	"the latest version of every type, by name"
//	@Failure	400		{object}	Problem								"bad cursor or limit"
//	@Failure	401		{object}	Problem								"missing or wrong API key"
//	@Failure	429	{object}	Problem								"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure	503	{object}	Problem								"database unavailable"
//	@Router		/v1/workflow-types [get]
func (s *Server) handleListDefinitions(w http.ResponseWriter, r *http.Request) error {
	cursor, limit, err := pageQuery(r)
	if err != nil {
		return err
	}
	page, err := s.engine.ListDefinitions(r.Context(), cursor, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

// handlePutDefinition validates a definition and stores it as the type's next version.
//
//	@ID			putWorkflowType
//	@Summary		Define a workflow type
//	@Description	Validates the definition (states, transitions, CEL expressions, JSON schemas, durations) and stores it as the next version of the type: 201 with a Location when a version was made, 200 when the body equals the latest version. Running instances stay on the version they started on. 422 lists every problem with its JSON path.
//	@Tags			workflow-types
//	@Accept			json
//	@Produce		json
//	@Produce		application/problem+json
//	@Security		BearerAuth
//	@Param			type		path		string				true	"workflow type name: ^[a-z][a-z0-9_]{0,62}$"
//	@Param			definition	body		DefinitionDocument	true	"the definition"
//	@Success		200			{object}	engine.DefinitionView	"identical to the latest version; nothing changed"
//	@Success		201			{object}	engine.DefinitionView	"stored as a new version"
//	@Header			201			{string}	Location				"/v1/workflow-types/{type}/versions/{version}"
//	@Failure		400			{object}	Problem					"malformed JSON or invalid UTF-8"
//	@Failure		401			{object}	Problem					"missing or wrong API key"
//	@Failure		429			{object}	Problem					"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure		413			{object}	Problem					"body over the limit"
//	@Failure		415			{object}	Problem					"Content-Type is not application/json"
//	@Failure		422			{object}	Problem					"invalid definition, with errors[{path, message}]"
//	@Failure		503			{object}	Problem					"database unavailable"
//	@Router			/v1/workflow-types/{type} [put]
func (s *Server) handlePutDefinition(w http.ResponseWriter, r *http.Request) error {
	typ, err := pathParam(r, "type")
	if err != nil {
		return err
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	def, created, err := s.engine.PutDefinition(r.Context(), typ, body)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		w.Header().Set("Location", fmt.Sprintf("/v1/workflow-types/%s/versions/%d", url.PathEscape(def.Type), def.Version))
	}
	return writeJSON(w, status, def)
}

// handleGetDefinition returns the latest definition of a type.
//
//	@ID			getWorkflowType
//	@Summary	Get a workflow type's latest definition
//	@Tags		workflow-types
//	@Produce	json
//	@Produce	application/problem+json
//	@Security	BearerAuth
//	@Param		type	path		string	true	"workflow type"
//	@Success	200		{object}	engine.DefinitionView
//	@Failure	401		{object}	Problem	"missing or wrong API key"
//	@Failure	429		{object}	Problem	"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure	404		{object}	Problem	"no such workflow type"
//	@Failure	503		{object}	Problem	"database unavailable"
//	@Router		/v1/workflow-types/{type} [get]
func (s *Server) handleGetDefinition(w http.ResponseWriter, r *http.Request) error {
	typ, err := typeParam(r)
	if err != nil {
		return err
	}
	def, err := s.engine.GetDefinition(r.Context(), typ, 0)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, def)
}

// handleListDefinitionVersions lists every version of a type.
//
//	@ID			listWorkflowTypeVersions
//	@Summary	List a workflow type's versions
//	@Tags		workflow-types
//	@Produce	json
//	@Produce	application/problem+json
//	@Security	BearerAuth
//	@Param		type	path		string								true	"workflow type"
//	@Param		cursor	query		string								false	"next_cursor of the previous page"
//	@Param		limit	query		int									false	"page size (default 50)"	minimum(1)	maximum(500)
//	@Success	200		{object}	engine.Page[engine.DefinitionView]	"every version, oldest first"
//	@Failure	400		{object}	Problem								"bad cursor or limit"
//	@Failure	401		{object}	Problem								"missing or wrong API key"
//	@Failure	429		{object}	Problem								"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure	404		{object}	Problem								"no such workflow type"
//	@Failure	503		{object}	Problem								"database unavailable"
//	@Router		/v1/workflow-types/{type}/versions [get]
func (s *Server) handleListDefinitionVersions(w http.ResponseWriter, r *http.Request) error {
	typ, err := typeParam(r)
	if err != nil {
		return err
	}
	cursor, limit, err := pageQuery(r)
	if err != nil {
		return err
	}
	page, err := s.engine.ListDefinitionVersions(r.Context(), typ, cursor, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

// handleGetDefinitionVersion returns one version of a type's definition.
//
//	@ID			getWorkflowTypeVersion
//	@Summary	Get one version of a workflow type
//	@Tags		workflow-types
//	@Produce	json
//	@Produce	application/problem+json
//	@Security	BearerAuth
//	@Param		type	path		string	true	"workflow type"
//	@Param		version	path		int		true	"version, from 1"	minimum(1)
//	@Success	200		{object}	engine.DefinitionView
//	@Failure	400		{object}	Problem	"version is not a positive integer"
//	@Failure	401		{object}	Problem	"missing or wrong API key"
//	@Failure	429		{object}	Problem	"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure	404		{object}	Problem	"no such workflow type or version"
//	@Failure	503		{object}	Problem	"database unavailable"
//	@Router		/v1/workflow-types/{type}/versions/{version} [get]
func (s *Server) handleGetDefinitionVersion(w http.ResponseWriter, r *http.Request) error {
	typ, err := typeParam(r)
	if err != nil {
		return err
	}
	version, err := versionParam(r)
	if err != nil {
		return err
	}
	def, err := s.engine.GetDefinition(r.Context(), typ, version)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, def)
}

func versionParam(r *http.Request) (int, error) {
	v, err := pathParam(r, "version")
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%w: version must be a positive integer, got %q", engine.ErrInvalidArgument, v)
	}
	return n, nil
}

// handleDiagram draws a workflow type as a state diagram.
//
//	@ID			getWorkflowTypeDiagram
//	@Summary		Diagram of a workflow type
//	@Description	A Mermaid stateDiagram-v2 (default) or, with format=dot, a Graphviz digraph of the definition, with effects and timers on the edges. Paste Mermaid into any Markdown that renders it; pipe DOT into `dot -Tsvg`.
//	@Tags			workflow-types
//	@Produce		plain
//	@Produce		text/vnd.graphviz
//	@Produce		application/problem+json
//	@Security		BearerAuth
//	@Param			type	path		string	true	"workflow type"
//	@Param			format	query		string	false	"diagram language"							Enums(mermaid, dot)	default(mermaid)
//	@Param			version	query		int		false	"definition version; the latest when absent"	minimum(1)
//	@Success		200		{string}	string	"the diagram (text/plain for Mermaid, text/vnd.graphviz for DOT)"
//	@Failure		400		{object}	Problem	"unknown format or bad version"
//	@Failure		401		{object}	Problem	"missing or wrong API key"
//	@Failure		429		{object}	Problem	"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure		404		{object}	Problem	"no such workflow type or version"
//	@Failure		503		{object}	Problem	"database unavailable"
//	@Router			/v1/workflow-types/{type}/diagram [get]
func (s *Server) handleDiagram(w http.ResponseWriter, r *http.Request) error {
	typ, err := typeParam(r)
	if err != nil {
		return err
	}
	version, err := intQuery(r, "version", 1, 1<<31-1)
	if err != nil {
		return err
	}
	format := r.URL.Query().Get("format")
	out, err := s.engine.Diagram(r.Context(), typ, int(version), format)
	if err != nil {
		return err
	}
	ct := "text/plain; charset=utf-8"
	if format == "dot" {
		ct = "text/vnd.graphviz; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(out))
	return nil
}
