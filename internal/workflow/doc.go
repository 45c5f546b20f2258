// Package workflow is ironflow's pure core: it parses and validates workflow
// definitions, compiles their CEL expressions and input JSON schemas, decides what
// an input does to an instance, evolves state from events and draws diagrams.
//
// Nothing here does I/O, reads a clock or keeps package-level mutable state: the
// same definition, state, input and time always give the same decision, so history
// replays the same forever.
//
// # Data conventions
//
//   - State data is always a JSON object; a new instance starts with {}.
//   - Input data that is absent (empty) is treated as {}; an explicit JSON null stays
//     null. Schemas validate that value.
//   - In CEL every JSON number is a double (JSON has one number type). Comparisons
//     across int and double work (input.data.amount >= 40), arithmetic needs matching
//     types (state.data.count + 1.0, or int(state.data.count) + 1).
//   - CEL results become JSON: timestamps as RFC 3339 strings in UTC, durations as Go
//     duration strings, bytes as standard base64, optional.none as null.
//   - Event data, and therefore effect payloads by default, must be a JSON object;
//     null counts as {}. When a transition has no data expression the input data is
//     copied byte for byte (numbers keep full precision).
//
// # Expressions
//
// Every expression sees four variables: input {type, data}, state {name, data} (the
// state BEFORE the input, except in the at of a state timer, which sees the state
// being entered), workflow {type, id} and now (a timestamp). They are parsed
// and type-checked once by [Parse]; [Decide] only evaluates them, under a cost limit.
// Besides CEL's standard library and optional types there are two functions:
// add_calendar(timestamp, 'P1M') adds an ISO 8601 duration, calendar months and years
// included, in UTC ([CalendarFunc]); merge(a, b) is the RFC 7386 merge patch of two
// maps ([MergeFunc]). Durations in a definition go through [ParseDuration].
package workflow
