// Command ironflow is the command-line client of an ironflow server, built on the Go
// client package:
//
//	ironflow apply -f examples/            define every *.json in a folder (type = file name)
//	ironflow validate -f order.json        check definitions offline, with the server's validator
//	ironflow send order o-1 pay '{"amount": 40}'
//	ironflow get order o-1
//	ironflow events order o-1 --follow
//	ironflow terminate order o-1 --reason "customer cancelled by phone"
//	ironflow dead                          dead effects and timers
//	ironflow retry effect <id>             (or: retry timer <id>)
//	ironflow diagram order --format dot
//
// IRONFLOW_URL (default http://127.0.0.1:8080) and IRONFLOW_API_KEY say which server
// and key. Exit status: 0 done (an input accepted), 1 an error or a problem from the
// server, 2 bad usage, 3 an input rejected or already completed (or a terminate of a
// workflow that has ended already).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/ironflow/ironflow/client"
	"github.com/ironflow/ironflow/internal/workflow"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK       = 0
	exitError    = 1
	exitUsage    = 2
	exitDeclined = 3 // an input rejected or already completed, or a workflow ended already
)

const usage = `usage: ironflow <command> [flags] [arguments]

commands:
  apply -f <file or folder>...        define workflow types (type name = file name without .json)
  validate -f <file or folder>...     validate definitions offline, as the server would
  send [flags] <type> <id> <input-type> [data-json]
                                      send an input (id "-": the server makes one)
  get [--at-version N] <type> <id>    show a workflow
  events [--follow] <type> <id>       print a workflow's events, one JSON object a line
  terminate --reason R <type> <id>    end a running workflow (status terminated), saying why
  dead [--type T]                     list dead effects and timers
  retry effect|timer <id>             retry a dead effect or timer
  diagram [--format mermaid|dot] [--version N] <type>

environment: IRONFLOW_URL (default http://127.0.0.1:8080), IRONFLOW_API_KEY
`

// errUsage marks a usage error (exit 2).
var errUsage = errors.New("usage")

// run is the CLI; main only wires the process to it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cli := &cli{getenv: getenv, stdout: stdout, stderr: stderr}
	commands := map[string]func(context.Context, []string) (int, error){
		"apply":     cli.apply,
		"validate":  cli.validate,
		"send":      cli.send,
		"get":       cli.get,
		"events":    cli.events,
		"terminate": cli.terminate,
		"dead":      cli.dead,
		"retry":     cli.retry,
		"diagram":   cli.diagram,
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "ironflow: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	code, err := cmd(ctx, args[1:])
	switch {
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "ironflow %s: %v\n\n%s", args[0], err, usage)
		return exitUsage
	case err != nil:
		fmt.Fprintf(stderr, "ironflow %s: %v\n", args[0], err)
		return exitError
	}
	return code
}

type cli struct {
	getenv         func(string) string
	stdout, stderr io.Writer
}

func (c *cli) client() (*client.Client, error) {
	u := c.getenv("IRONFLOW_URL")
	if u == "" {
		u = "http://127.0.0.1:8080"
	}
	return client.New(u, client.WithAPIKey(c.getenv("IRONFLOW_API_KEY")))
}

// flags parses args with fs, allowing flags after the positional arguments too.
func flags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// start parses args with fs, checks that exactly n positional arguments came (usage
// is the command line shown otherwise) and makes the client.
func (c *cli) start(fs *flag.FlagSet, args []string, n int, usage string) ([]string, *client.Client, error) {
	pos, err := flags(fs, args)
	if err != nil {
		return nil, nil, err
	}
	if len(pos) != n {
		return nil, nil, fmt.Errorf("%w: %s", errUsage, usage)
	}
	cl, err := c.client()
	return pos, cl, err
}

// fileList is a repeatable -f flag.
type fileList []string

func (f *fileList) String() string     { return strings.Join(*f, ",") }
func (f *fileList) Set(v string) error { *f = append(*f, v); return nil }

// definitionFiles expands -f arguments: a folder gives every *.json in it, by name.
func definitionFiles(args []string) ([]string, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("%w: -f <file or folder> is required", errUsage)
	}
	var files []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, a)
			continue
		}
		found, err := filepath.Glob(filepath.Join(a, "*.json"))
		if err != nil {
			return nil, err
		}
		sort.Strings(found)
		files = append(files, found...)
	}
	return files, nil
}

// typeOf names the workflow type a definition file defines: its name without .json.
func typeOf(file string) string { return strings.TrimSuffix(filepath.Base(file), ".json") }

func (c *cli) apply(ctx context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	var files fileList
	fs.Var(&files, "f", "definition file or folder (repeatable)")
	if _, err := flags(fs, args); err != nil {
		return 0, err
	}
	paths, err := definitionFiles(files)
	if err != nil {
		return 0, err
	}
	cl, err := c.client()
	if err != nil {
		return 0, err
	}
	code := exitOK
	for _, p := range paths {
		body, err := os.ReadFile(p)
		if err != nil {
			return 0, err
		}
		d, created, err := cl.PutDefinition(ctx, typeOf(p), body)
		switch {
		case err != nil:
			fmt.Fprintf(c.stderr, "%s: %v\n", p, err)
			code = exitError
		case created:
			fmt.Fprintf(c.stdout, "%s: defined version %d\n", d.Type, d.Version)
		default:
			fmt.Fprintf(c.stdout, "%s: unchanged (version %d)\n", d.Type, d.Version)
		}
	}
	return code, nil
}

func (c *cli) validate(_ context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	var files fileList
	fs.Var(&files, "f", "definition file or folder (repeatable)")
	if _, err := flags(fs, args); err != nil {
		return 0, err
	}
	paths, err := definitionFiles(files)
	if err != nil {
		return 0, err
	}
	code := exitOK
	for _, p := range paths {
		body, err := os.ReadFile(p)
		if err != nil {
			return 0, err
		}
		// The server's own parser with its default limits: the same errors, with the
		// same paths, as a PUT of the file would answer.
		_, err = workflow.ParseWithLimits(typeOf(p), body, workflow.Limits{})
		var ve *workflow.ValidationError
		switch {
		case errors.As(err, &ve):
			code = exitError
			fmt.Fprintf(c.stdout, "%s: invalid\n", p)
			for _, fe := range ve.Errors {
				fmt.Fprintf(c.stdout, "  %s: %s\n", fe.Path, fe.Message)
			}
		case err != nil:
			code = exitError
			fmt.Fprintf(c.stdout, "%s: invalid: %v\n", p, err)
		default:
			fmt.Fprintf(c.stdout, "%s: ok\n", p)
		}
	}
	return code, nil
}

func (c *cli) send(ctx context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	key := fs.String("idempotency-key", "", "retries with the same key return the first answer")
	ifVersion := fs.Int64("if-version", -1, "only if the workflow is at this version (0: it must not exist)")
	dryRun := fs.Bool("dry-run", false, "decide without committing")
	after := fs.String("deliver-after", "", "store the input and send it after this duration (90s)")
	pos, err := flags(fs, args)
	if err != nil {
		return 0, err
	}
	if len(pos) < 3 || len(pos) > 4 {
		return 0, fmt.Errorf("%w: send <type> <id> <input-type> [data-json]", errUsage)
	}
	in := client.Input{Type: pos[2], DeliverAfter: *after}
	if len(pos) == 4 {
		if !json.Valid([]byte(pos[3])) {
			return 0, fmt.Errorf("%w: data is not JSON: %s", errUsage, pos[3])
		}
		in.Data = json.RawMessage(pos[3])
	}
	o := client.SendOptions{IdempotencyKey: *key, DryRun: *dryRun}
	if *ifVersion >= 0 {
		o.IfVersion = ifVersion
	}
	id := pos[1]
	if id == "-" {
		id = ""
	}
	cl, err := c.client()
	if err != nil {
		return 0, err
	}
	res, err := cl.Send(ctx, pos[0], id, in, o)
	if err != nil {
		return 0, err
	}
	if err := c.printJSON(res); err != nil {
		return 0, err
	}
	if res.Outcome == client.OutcomeRejected || res.Outcome == client.OutcomeAlreadyCompleted {
		return exitDeclined, nil
	}
	return exitOK, nil
}

func (c *cli) get(ctx context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	at := fs.Int64("at-version", 0, "the state at this version")
	pos, cl, err := c.start(fs, args, 2, "get <type> <id>")
	if err != nil {
		return 0, err
	}
	w, err := cl.GetWorkflow(ctx, pos[0], pos[1], *at)
	if err != nil {
		return 0, err
	}
	return exitOK, c.printJSON(w)
}

func (c *cli) events(ctx context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	follow := fs.Bool("follow", false, "keep printing new events until interrupted")
	interval := fs.Duration("interval", time.Second, "how often --follow asks for new events")
	pos, cl, err := c.start(fs, args, 2, "events <type> <id>")
	if err != nil {
		return 0, err
	}
	enc := json.NewEncoder(c.stdout)
	enc.SetEscapeHTML(false)
	if *follow {
		err := cl.FollowEvents(ctx, pos[0], pos[1], "", *interval, func(e client.Event) error { return enc.Encode(e) })
		if errors.Is(err, context.Canceled) {
			return exitOK, nil // interrupted: the normal end of --follow
		}
		return 0, err
	}
	cursor := ""
	for {
		p, err := cl.ListEvents(ctx, pos[0], pos[1], cursor, 500)
		if err != nil {
			return 0, err
		}
		for _, e := range p.Items {
			if err := enc.Encode(e); err != nil {
				return 0, err
			}
		}
		if cursor = p.NextCursor; cursor == "" {
			return exitOK, nil
		}
	}
}

func (c *cli) terminate(ctx context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("terminate", flag.ContinueOnError)
	reason := fs.String("reason", "", "why, kept in the workflow's input log (required, up to 1 KiB)")
	key := fs.String("idempotency-key", "", "retries with the same key return the first answer")
	ifVersion := fs.Int64("if-version", -1, "only if the workflow is at this version")
	pos, err := flags(fs, args)
	if err != nil {
		return 0, err
	}
	if len(pos) != 2 {
		return 0, fmt.Errorf("%w: terminate --reason R <type> <id>", errUsage)
	}
	if strings.TrimSpace(*reason) == "" {
		return 0, fmt.Errorf("%w: --reason is required: say why, for whoever reads the history", errUsage)
	}
	o := client.TerminateOptions{IdempotencyKey: *key}
	if *ifVersion >= 0 {
		o.IfVersion = ifVersion
	}
	cl, err := c.client()
	if err != nil {
		return 0, err
	}
	res, err := cl.Terminate(ctx, pos[0], pos[1], *reason, o)
	if err != nil {
		return 0, err
	}
	if err := c.printJSON(res); err != nil {
		return 0, err
	}
	if res.Outcome == client.OutcomeAlreadyCompleted {
		return exitDeclined, nil
	}
	return exitOK, nil
}

func (c *cli) dead(ctx context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("dead", flag.ContinueOnError)
	typ := fs.String("type", "", "only this workflow type")
	_, cl, err := c.start(fs, args, 0, "dead [--type T]")
	if err != nil {
		return 0, err
	}
	f := client.ListFilter{Status: "dead", WorkflowType: *typ, Limit: 500}
	for {
		p, err := cl.ListEffects(ctx, f)
		if err != nil {
			return 0, err
		}
		for _, e := range p.Items {
			fmt.Fprintf(c.stdout, "effect %s\t%s/%s\t%s\tattempts %d\t%s\n", e.ID, e.WorkflowType, e.WorkflowID, e.Name, e.Attempts, e.LastError)
		}
		if f.Cursor = p.NextCursor; f.Cursor == "" {
			break
		}
	}
	for {
		p, err := cl.ListTimers(ctx, f)
		if err != nil {
			return 0, err
		}
		for _, t := range p.Items {
			fmt.Fprintf(c.stdout, "timer %s\t%s/%s\t%s\tattempts %d\t%s\n", t.ID, t.WorkflowType, t.WorkflowID, t.Key, t.Attempts, t.LastError)
		}
		if f.Cursor = p.NextCursor; f.Cursor == "" {
			return exitOK, nil
		}
	}
}

func (c *cli) retry(ctx context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("retry", flag.ContinueOnError)
	pos, err := flags(fs, args)
	if err != nil {
		return 0, err
	}
	if len(pos) != 2 || (pos[0] != "effect" && pos[0] != "timer") {
		return 0, fmt.Errorf("%w: retry effect|timer <id>", errUsage)
	}
	cl, err := c.client()
	if err != nil {
		return 0, err
	}
	if pos[0] == "effect" {
		e, err := cl.RetryEffect(ctx, pos[1])
		if err != nil {
			return 0, err
		}
		return exitOK, c.printJSON(e)
	}
	t, err := cl.RetryTimer(ctx, pos[1])
	if err != nil {
		return 0, err
	}
	return exitOK, c.printJSON(t)
}

func (c *cli) diagram(ctx context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("diagram", flag.ContinueOnError)
	format := fs.String("format", "mermaid", "mermaid or dot")
	version := fs.Int("version", 0, "definition version (default: the latest)")
	pos, cl, err := c.start(fs, args, 1, "diagram <type>")
	if err != nil {
		return 0, err
	}
	text, err := cl.Diagram(ctx, pos[0], *format, *version)
	if err != nil {
		return 0, err
	}
	fmt.Fprintln(c.stdout, strings.TrimRight(text, "\n"))
	return exitOK, nil
}

func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
