// Package config reads the server's configuration from command-line flags and IRONFLOW_*
// environment variables and validates it. Nothing here is global: Load returns a value
// and every caller passes it on.
//
// Precedence: a flag wins over the environment, the environment wins over the
// defaults. Secrets (API keys, the database URL, which may hold a password) may also
// be read from a file named by the variable with a _FILE suffix, as container secrets
// are mounted.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// ErrInvalid is wrapped by every validation error Load returns.
var ErrInvalid = errors.New("invalid configuration")

// Commands the server binary understands.
const (
	// CommandServe runs the server (the default).
	CommandServe = "serve"
	// CommandMigrate applies the database migrations and exits.
	CommandMigrate = "migrate"
)

// Log formats.
const (
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// Config is the validated server configuration.
type Config struct {
	// Command is CommandServe or CommandMigrate.
	Command string
	// ListenAddr is the TCP address the HTTP server listens on ("127.0.0.1:0" picks a
	// free port).
	ListenAddr string
	// DatabaseURL selects the store: sqlite://<path> or postgres://….
	DatabaseURL string
	// APIKeys are the accepted bearer tokens; none means no authentication, which is
	// only allowed on a loopback ListenAddr.
	APIKeys []string
	// WebhookAllowNets are private networks webhooks may reach nonetheless.
	WebhookAllowNets []netip.Prefix
	// WebhookTimeout bounds one webhook delivery attempt.
	WebhookTimeout time.Duration
	// MaxAttempts is the attempt budget of an effect or a timer before it is dead.
	MaxAttempts int
	// RetryInitialInterval and RetryMaxInterval bound the exponential backoff between
	// the attempts of an effect or a timer.
	RetryInitialInterval time.Duration
	RetryMaxInterval     time.Duration
	// EffectConcurrency bounds the webhook deliveries in flight per server.
	EffectConcurrency int
	// EffectConcurrencyPerType bounds the deliveries in flight of one workflow type;
	// 0 means three quarters of EffectConcurrency.
	EffectConcurrencyPerType int
	// MaxChainDepth bounds a chain of routed answers: past it an effect whose answer
	// routes another input is dead, with a reason that says so.
	MaxChainDepth int
	// TimerConcurrency bounds the timers in flight per server: claimed (up to a short
	// lookahead before they are due) and not yet recorded.
	TimerConcurrency int
	// LogFormat is LogFormatText or LogFormatJSON.
	LogFormat string
	// LogLevel is the minimum level logged.
	LogLevel slog.Level
	// MaxBodyBytes bounds a request body; larger bodies get 413.
	MaxBodyBytes int64
	// RateLimit is how many requests per second each API key (or client IP without a
	// valid key) may make to the /v1 API and /metrics; 0 (the default) is no limit.
	RateLimit int
	// Retention is how long delivered effects, fired and cancelled timers and the
	// inputs of completed instances are kept before they are pruned.
	Retention time.Duration
	// MaxDataBytes caps every expression result, event data, effect payload and the
	// state data of an instance (422 too_large beyond).
	MaxDataBytes int
	// MaxForEach caps the elements the for_each lists of one transition give
	// together (422 too_large beyond).
	MaxForEach int
	// DecisionTimeout is the wall-clock budget of one decision's expressions.
	DecisionTimeout time.Duration
	// MaxConns bounds the open client connections of the HTTP server; at the bound an
	// idle keep-alive connection is closed to make room, or the new one is refused.
	MaxConns int
	// MaxConnsPerClient bounds the open connections of one client address.
	MaxConnsPerClient int
	// IdleTimeout is how long a keep-alive connection may wait for its next request.
	IdleTimeout time.Duration
	// MaxWait caps how long a long-poll (wait=) may be held.
	MaxWait time.Duration
	// MaxStreams bounds the event streams (Server-Sent Events) open at once per API
	// key, or per client address without a key.
	MaxStreams int
}

// Default values, also shown by -help. The server's workers take every setting from
// the Config, so these are the defaults an operator sees; the worker packages' own
// defaults, for a zero field, are only for their direct users (tests, benchmarks), and
// the server's tests check that the two agree.
const (
	DefaultListenAddr           = "127.0.0.1:8080"
	DefaultDatabaseURL          = "sqlite://data/ironflow.db"
	DefaultWebhookTimeout       = 10 * time.Second
	DefaultMaxAttempts          = 10
	DefaultRetryInitialInterval = time.Second
	DefaultRetryMaxInterval     = 10 * time.Minute
	DefaultEffectConcurrency    = 64
	DefaultMaxChainDepth        = 20
	DefaultTimerConcurrency     = 1024
	DefaultMaxBodyBytes         = 1 << 20
	DefaultRetention            = 30 * 24 * time.Hour
	DefaultMaxDataBytes         = 256 << 10
	DefaultMaxForEach           = 1000
	DefaultDecisionTimeout      = time.Second
	DefaultMaxConns             = 2048
	DefaultMaxConnsPerClient    = 256
	DefaultIdleTimeout          = 30 * time.Second
	DefaultMaxWait              = 60 * time.Second
	DefaultMaxStreams           = 8
)

// setting is one configuration knob: its environment variable, the flag that mirrors
// it (derived from the variable's name) and how to apply a value to a Config.
type setting struct {
	env    string
	def    string
	usage  string
	secret bool // may be read from $<env>_FILE
	apply  func(c *Config, v string) error
}

func settings() []setting {
	return []setting{
		{env: "IRONFLOW_LISTEN_ADDR", def: DefaultListenAddr, usage: "TCP address to listen on",
			apply: func(c *Config, v string) error {
				if _, _, err := net.SplitHostPort(v); err != nil {
					return fmt.Errorf("%q is not host:port", v)
				}
				c.ListenAddr = v
				return nil
			}},
		{env: "IRONFLOW_DATABASE_URL", def: DefaultDatabaseURL, secret: true,
			usage: "database: sqlite://<path> (embedded) or postgres://… (shared)",
			apply: func(c *Config, v string) error {
				if err := checkDatabaseURL(v); err != nil {
					return err
				}
				c.DatabaseURL = v
				return nil
			}},
		{env: "IRONFLOW_API_KEYS", secret: true,
			usage: "comma-separated bearer tokens for /v1 and /metrics; empty allows loopback only",
			apply: func(c *Config, v string) error {
				c.APIKeys = nil
				for _, k := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
					if k = strings.TrimSpace(k); k != "" {
						c.APIKeys = append(c.APIKeys, k)
					}
				}
				return nil
			}},
		{env: "IRONFLOW_WEBHOOK_ALLOW_NETS",
			usage: "comma-separated CIDRs webhooks may reach although private or loopback",
			apply: func(c *Config, v string) error {
				c.WebhookAllowNets = nil
				for _, s := range strings.Split(v, ",") {
					if s = strings.TrimSpace(s); s == "" {
						continue
					}
					p, err := netip.ParsePrefix(s)
					if err != nil {
						return fmt.Errorf("%q is not a CIDR like 127.0.0.0/8", s)
					}
					c.WebhookAllowNets = append(c.WebhookAllowNets, p.Masked())
				}
				return nil
			}},
		{env: "IRONFLOW_WEBHOOK_TIMEOUT", def: DefaultWebhookTimeout.String(), usage: "timeout of one webhook delivery attempt",
			apply: func(c *Config, v string) (err error) { c.WebhookTimeout, err = positiveDuration(v); return err }},
		{env: "IRONFLOW_MAX_ATTEMPTS", def: strconv.Itoa(DefaultMaxAttempts), usage: "attempts before an effect or a timer is dead",
			apply: func(c *Config, v string) (err error) { c.MaxAttempts, err = positiveInt(v); return err }},
		{env: "IRONFLOW_RETRY_INITIAL_INTERVAL", def: DefaultRetryInitialInterval.String(), usage: "first backoff interval between the attempts of an effect or a timer",
			apply: func(c *Config, v string) (err error) { c.RetryInitialInterval, err = positiveDuration(v); return err }},
		{env: "IRONFLOW_RETRY_MAX_INTERVAL", def: DefaultRetryMaxInterval.String(), usage: "largest backoff interval between the attempts of an effect or a timer",
			apply: func(c *Config, v string) (err error) { c.RetryMaxInterval, err = positiveDuration(v); return err }},
		{env: "IRONFLOW_EFFECT_CONCURRENCY", def: strconv.Itoa(DefaultEffectConcurrency), usage: "webhook deliveries in flight per server (requests to receivers; up to as many delivered effects more wait for their completion batch)",
			apply: func(c *Config, v string) (err error) { c.EffectConcurrency, err = positiveInt(v); return err }},
		{env: "IRONFLOW_EFFECT_CONCURRENCY_PER_TYPE", def: "0",
			usage: "webhook deliveries in flight per server for one workflow type, so a slow or looping receiver leaves slots to the others; 0 is three quarters of IRONFLOW_EFFECT_CONCURRENCY",
			apply: func(c *Config, v string) error {
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					return fmt.Errorf("%q is not a number of deliveries (0 is three quarters of IRONFLOW_EFFECT_CONCURRENCY)", v)
				}
				c.EffectConcurrencyPerType = n
				return nil
			}},
		{env: "IRONFLOW_MAX_CHAIN_DEPTH", def: strconv.Itoa(DefaultMaxChainDepth),
			usage: "routed answers in a row (a receiver answering each effect with an input that emits more) before the next effect is dead instead of routing its answer",
			apply: func(c *Config, v string) (err error) { c.MaxChainDepth, err = positiveInt(v); return err }},
		{env: "IRONFLOW_TIMER_CONCURRENCY", def: strconv.Itoa(DefaultTimerConcurrency),
			usage: "timers in flight per server, claimed up to 100ms ahead; firings are recorded in batches",
			apply: func(c *Config, v string) (err error) { c.TimerConcurrency, err = positiveInt(v); return err }},
		{env: "IRONFLOW_LOG_FORMAT", def: LogFormatText, usage: "log format: text or json",
			apply: func(c *Config, v string) error {
				switch v = strings.ToLower(v); v {
				case LogFormatText, LogFormatJSON:
					c.LogFormat = v
					return nil
				}
				return fmt.Errorf("%q is not text or json", v)
			}},
		{env: "IRONFLOW_LOG_LEVEL", def: "info", usage: "minimum log level: debug, info, warn or error",
			apply: func(c *Config, v string) error {
				if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
					return fmt.Errorf("%q is not debug, info, warn or error", v)
				}
				return nil
			}},
		{env: "IRONFLOW_MAX_BODY_BYTES", def: strconv.Itoa(DefaultMaxBodyBytes), usage: "largest request body in bytes",
			apply: func(c *Config, v string) error {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil || n < 1 {
					return fmt.Errorf("%q is not a positive integer", v)
				}
				c.MaxBodyBytes = n
				return nil
			}},
		{env: "IRONFLOW_RATE_LIMIT", def: "0", usage: "requests per second per API key (or client IP) on the authenticated routes; 0 is no limit",
			apply: func(c *Config, v string) error {
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					return fmt.Errorf("%q is not a number of requests per second (0 is no limit)", v)
				}
				c.RateLimit = n
				return nil
			}},
		{env: "IRONFLOW_RETENTION", def: DefaultRetention.String(),
			usage: "how long delivered effects, fired and cancelled timers and completed instances' inputs are kept",
			apply: func(c *Config, v string) (err error) { c.Retention, err = positiveDuration(v); return err }},
		{env: "IRONFLOW_MAX_DATA_BYTES", def: strconv.Itoa(DefaultMaxDataBytes),
			usage: "largest expression result, event data, effect payload and instance state data in bytes of JSON (422 too_large beyond)",
			apply: func(c *Config, v string) (err error) { c.MaxDataBytes, err = positiveInt(v); return err }},
		{env: "IRONFLOW_MAX_FOR_EACH", def: strconv.Itoa(DefaultMaxForEach),
			usage: "effects and timers one transition's for_each lists may produce together (422 too_large beyond)",
			apply: func(c *Config, v string) (err error) { c.MaxForEach, err = positiveInt(v); return err }},
		{env: "IRONFLOW_DECISION_TIMEOUT", def: DefaultDecisionTimeout.String(),
			usage: "wall-clock budget of one decision's expressions (422 evaluation_failed beyond)",
			apply: func(c *Config, v string) (err error) { c.DecisionTimeout, err = positiveDuration(v); return err }},
		{env: "IRONFLOW_MAX_CONNS", def: strconv.Itoa(DefaultMaxConns),
			usage: "open client connections of the HTTP server; at the bound an idle keep-alive connection makes room, else a new one is closed",
			apply: func(c *Config, v string) (err error) { c.MaxConns, err = positiveInt(v); return err }},
		{env: "IRONFLOW_MAX_CONNS_PER_CLIENT", def: strconv.Itoa(DefaultMaxConnsPerClient),
			usage: "open connections of one client IP address; more are closed at once",
			apply: func(c *Config, v string) (err error) { c.MaxConnsPerClient, err = positiveInt(v); return err }},
		{env: "IRONFLOW_IDLE_TIMEOUT", def: DefaultIdleTimeout.String(),
			usage: "how long a keep-alive connection may wait for its next request",
			apply: func(c *Config, v string) (err error) { c.IdleTimeout, err = positiveDuration(v); return err }},
		{env: "IRONFLOW_MAX_WAIT", def: DefaultMaxWait.String(), usage: "longest a long-poll (wait=) is held; longer waits are cut to it",
			apply: func(c *Config, v string) (err error) { c.MaxWait, err = positiveDuration(v); return err }},
		{env: "IRONFLOW_MAX_STREAMS", def: strconv.Itoa(DefaultMaxStreams), usage: "event streams (Server-Sent Events) open at once per API key (or client address)",
			apply: func(c *Config, v string) (err error) { c.MaxStreams, err = positiveInt(v); return err }},
	}
}

// flagName derives a setting's flag from its variable: IRONFLOW_LISTEN_ADDR → listen-addr.
func flagName(env string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(env, "IRONFLOW_")), "_", "-")
}

// Load builds the Config from args (the command line without the program name) and the
// environment read through getenv. The first argument may be a command ("serve",
// "migrate"); flags may come before or after it. Help output goes to out.
//
// Errors: flag.ErrHelp when -h or -help was given (usage was printed), or an error
// wrapping ErrInvalid that lists every problem found, one per line.
func Load(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	c := Config{Command: CommandServe}
	explicit := false
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		c.Command, args, explicit = args[0], args[1:], true
	}

	set := settings()
	fs := flag.NewFlagSet("ironflow", flag.ContinueOnError)
	fs.SetOutput(out)
	values := make([]*string, len(set))
	for i, s := range set {
		usage := s.usage + " (env " + s.env
		if s.secret {
			usage += ", or " + s.env + "_FILE"
		}
		usage += ")"
		values[i] = fs.String(flagName(s.env), s.def, usage)
	}
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: ironflow [serve|migrate] [flags]\n\n"+
			"  serve    run the HTTP server (default)\n"+
			"  migrate  apply the database migrations and exit\n\nFlags:\n")
		fs.PrintDefaults()
	}
	parse := func(args []string) error {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		return nil
	}
	if err := parse(args); err != nil {
		return Config{}, err
	}
	// The command may also follow the flags: "-database-url=… migrate".
	rest := fs.Args()
	if !explicit && len(rest) > 0 {
		c.Command = rest[0]
		if err := parse(rest[1:]); err != nil {
			return Config{}, err
		}
		rest = fs.Args()
	}

	var problems []string
	if c.Command != CommandServe && c.Command != CommandMigrate {
		problems = append(problems, fmt.Sprintf("unknown command %q: want serve or migrate", c.Command))
	}
	if len(rest) > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments %q", rest))
	}
	fromFlag := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { fromFlag[f.Name] = true })

	for i, s := range set {
		name := flagName(s.env)
		v, source, err := lookup(s, getenv, fromFlag[name], *values[i])
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if err := s.apply(&c, v); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", source, err))
		}
	}
	if len(problems) == 0 {
		if err := c.checkExposure(); err != nil {
			problems = append(problems, err.Error())
		}
		if c.MaxConnsPerClient > c.MaxConns {
			problems = append(problems, fmt.Sprintf("IRONFLOW_MAX_CONNS_PER_CLIENT (%d) is larger than IRONFLOW_MAX_CONNS (%d)", c.MaxConnsPerClient, c.MaxConns))
		}
		if c.RetryMaxInterval < c.RetryInitialInterval {
			problems = append(problems, fmt.Sprintf("IRONFLOW_RETRY_MAX_INTERVAL (%s) is shorter than IRONFLOW_RETRY_INITIAL_INTERVAL (%s)",
				c.RetryMaxInterval, c.RetryInitialInterval))
		}
	}
	if len(problems) > 0 {
		return Config{}, fmt.Errorf("%w:\n  %s", ErrInvalid, strings.Join(problems, "\n  "))
	}
	return c, nil
}

// lookup returns the raw value of s and a name of where it came from for messages:
// the flag, else the variable, else the variable's _FILE, else the default.
func lookup(s setting, getenv func(string) string, flagSet bool, flagValue string) (value, source string, err error) {
	if flagSet {
		return flagValue, "-" + flagName(s.env), nil
	}
	env := getenv(s.env)
	if s.secret {
		if file := getenv(s.env + "_FILE"); file != "" {
			if env != "" {
				return "", "", fmt.Errorf("%s and %s_FILE are both set: set one", s.env, s.env)
			}
			b, err := os.ReadFile(file)
			if err != nil {
				return "", "", fmt.Errorf("%s_FILE: %v", s.env, err)
			}
			return strings.TrimSpace(string(b)), s.env + "_FILE", nil
		}
	}
	if env != "" {
		return env, s.env, nil
	}
	return s.def, s.env + " (default)", nil
}

// checkExposure refuses a listen address other people can reach when no API key
// protects it.
func (c *Config) checkExposure() error {
	if len(c.APIKeys) > 0 || c.Command == CommandMigrate {
		return nil
	}
	host, _, _ := net.SplitHostPort(c.ListenAddr)
	if host == "localhost" {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("IRONFLOW_LISTEN_ADDR %q is not a loopback address and no IRONFLOW_API_KEYS are set: "+
		"anyone who can reach it could drive your workflows; set IRONFLOW_API_KEYS or listen on 127.0.0.1", c.ListenAddr)
}

func positiveDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration like 10s or 1m30s", v)
	}
	return d, nil
}

// Database backends a URL can select.
const (
	BackendSQLite   = "sqlite"
	BackendPostgres = "postgres"
)

// Backend returns which store a database URL selects and, for SQLite, the file path.
// Errors: ErrInvalid for any other scheme or an empty SQLite path.
func Backend(databaseURL string) (backend, sqlitePath string, err error) {
	b, p, err := parseBackend(databaseURL)
	if err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return b, p, nil
}

func parseBackend(databaseURL string) (backend, sqlitePath string, err error) {
	scheme, rest, ok := strings.Cut(databaseURL, ":")
	switch {
	case !ok:
	case scheme == "postgres" || scheme == "postgresql":
		return BackendPostgres, "", nil
	case scheme == "sqlite":
		path := strings.TrimPrefix(rest, "//")
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		if path == "" {
			return "", "", fmt.Errorf("sqlite URL %q has no file path (want sqlite://data/ironflow.db)", databaseURL)
		}
		return BackendSQLite, path, nil
	}
	return "", "", errors.New("must start with sqlite:// or postgres://")
}

func checkDatabaseURL(v string) error {
	_, _, err := parseBackend(v)
	return err
}

// positiveInt parses an integer of at least 1.
func positiveInt(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%q is not a positive integer", v)
	}
	return n, nil
}
