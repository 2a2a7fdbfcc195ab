package servers

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"time"

	"pushbench/event"
	"pushbench/webhttp"
)

// AddFlags defines `pushbench serve`'s flags for a Config and a run on fs
// (all but --tls, whose certificate is the command's to make). The returned
// function reads them after parsing and checks them: each error names its
// flag. It returns the Config (Ring 0 without --ring: the default for the
// rooms) and, with --rate above 0, the broadcast to start (Rate 0: none).
func AddFlags(fs *flag.FlagSet) func() (Config, PublishConfig, error) {
	addr := fs.String("addr", DefaultAddr, "listen `address` (host:port; port 0 picks a free one)")
	rate := fs.Float64("rate", 0, "events per second; 0 = idle until POST /control/start")
	payload := fs.Int("payload", DefaultPayload, fmt.Sprintf("encoded event size in `bytes` (%d to %d)", event.MinSize, event.MaxSize))
	ring := fs.Int("ring", DefaultRing, fmt.Sprintf("events kept for polls and resumes (K) in each room; rooms × ring at most %d (without --ring: %d, or %d / rooms if smaller)", MaxRing, DefaultRing, MaxRing))
	rooms := fs.Int("rooms", DefaultRooms, fmt.Sprintf("rooms, each with its own sequence and ring (1 to %d); clients name theirs with room=R", MaxRooms))
	maxSendRate := fs.Float64("max-send-rate", DefaultMaxSendRate, "upstream messages per second one connection may send (chat, game); over it: 429, WebSocket close 1008, raw TCP closed")
	sendBurst := fs.Int("send-burst", DefaultSendBurst, "upstream messages one connection may send at once, within --max-send-rate")
	hold := fs.Duration("hold", DefaultHold, "longest hold of a long poll")
	events := fs.Uint64("events", 0, "stop publishing after this many events; 0 = until stopped (needs --rate)")
	schedule := fs.String("schedule", ScheduleConstant, "event spacing: constant or poisson (needs --rate)")
	seed := fs.Uint64("seed", 0, "seed of the poisson schedule; 0 = fixed default (needs --rate)")
	spin := fs.Duration("spin", DefaultSpin, "spin this long before each event's due time instead of sleeping (0 = never)")
	writeTimeout := fs.Duration("write-timeout", DefaultWriteTimeout, "deadline of every write to a client; a missed one cuts the client off")
	queue := fs.Int("queue", DefaultWSQueue, "WebSocket queue per connection in messages; full = client cut off")
	response := fs.String("response-headers", webhttp.ResponseMinimal, "response header `profile`: minimal (what the server sends by itself) or deployment (what a reverse proxy adds; docs/http.md)")
	compress := fs.Bool("compress", false, "gzip poll answers and SSE streams, permessage-deflate for WebSocket, for clients that offer them")
	pad := fs.String("pad", event.PadX.String(), "event `padding`: x (compresses to nothing) or text (compresses like a real message)")
	cutEvery := fs.Duration("cut-every", 0, "end every SSE stream, WebSocket and raw TCP connection this long after it opened, as a deploy would (SSE: end of response, WebSocket: close 1012, TCP: end of stream); clients resume from the ring (0 = never)")
	sseRetry := fs.Duration("sse-retry", 0, "start every SSE stream with retry: <ms>, the time an EventSource waits before it reconnects (whole milliseconds; 0 = no field: Chromium waits 3000 ms)")
	token := fs.String("token", "", fmt.Sprintf("bearer `token` that /control/* requires (Authorization: Bearer TOKEN; at least %d characters); required when --addr is not loopback", MinTokenLen))
	var cors []string
	fs.Func("cors", "allow pages on `ORIGIN` (scheme://host[:port], or * for any) besides the server's own: CORS on the polls, SSE, /send and /stats, and their WebSocket upgrades (repeatable; default: same origin only)", func(v string) error {
		cors = append(cors, v)
		return nil
	})
	return func() (Config, PublishConfig, error) {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		cfg := Config{Addr: *addr, Ring: *ring, Rooms: *rooms, MaxSendRate: *maxSendRate, SendBurst: *sendBurst,
			Hold: *hold, WriteTimeout: *writeTimeout, WSQueue: *queue, Payload: *payload, Spin: *spin,
			Response: *response, Compress: *compress, CutEvery: *cutEvery, SSERetry: *sseRetry, Token: *token}
		run := PublishConfig{Rate: *rate, Payload: *payload, Events: *events, Schedule: *schedule, Seed: *seed, Spin: *spin}
		if !set["ring"] {
			cfg.Ring = 0 // the default for the rooms
		}
		var err error
		switch {
		case math.IsNaN(*rate) || math.IsInf(*rate, 0) || *rate < 0:
			err = fmt.Errorf("--rate %v: want 0 (idle) or a positive number of events per second", *rate)
		case *rate == 0 && (set["events"] || set["schedule"] || set["seed"]):
			err = errors.New("--events, --schedule and --seed shape the run --rate starts; with --rate 0 pass them to POST /control/start")
		case *hold <= 0:
			err = fmt.Errorf("--hold %v: must be positive", *hold)
		case *writeTimeout <= 0:
			err = fmt.Errorf("--write-timeout %v: must be positive", *writeTimeout)
		case *queue < 1:
			err = fmt.Errorf("--queue %d: must be at least 1", *queue)
		case *rooms < 1 || *rooms > MaxRooms:
			err = fmt.Errorf("--rooms %d: must be between 1 and %d", *rooms, MaxRooms)
		case *ring < 1 || *ring > MaxRing:
			err = fmt.Errorf("--ring %d: must be between 1 and %d", *ring, MaxRing)
		case set["ring"] && *ring > MaxRing / *rooms:
			err = fmt.Errorf("--ring %d in each of %d rooms: above %d events in all (at most %d per room)", *ring, *rooms, MaxRing, MaxRing / *rooms)
		case math.IsNaN(*maxSendRate) || math.IsInf(*maxSendRate, 0) || *maxSendRate <= 0:
			err = fmt.Errorf("--max-send-rate %v: must be a positive number of messages per second", *maxSendRate)
		case *sendBurst < 1:
			err = fmt.Errorf("--send-burst %d: must be at least 1", *sendBurst)
		case *spin < 0:
			err = fmt.Errorf("--spin %v: must not be negative", *spin)
		case !isLoopback(*addr) && *token == "":
			err = fmt.Errorf("--addr %s is not loopback: give --token (at least %d characters), which /control/* then requires, or anyone who reaches the port can drive the server", *addr, MinTokenLen)
		case *token != "" && len(*token) < MinTokenLen:
			err = fmt.Errorf("--token: %d characters, want at least %d", len(*token), MinTokenLen)
		case *cutEvery < 0:
			err = fmt.Errorf("--cut-every %v: must not be negative", *cutEvery)
		case *sseRetry < 0 || *sseRetry%time.Millisecond != 0:
			err = fmt.Errorf("--sse-retry %v: must be a whole number of milliseconds, 0 or more", *sseRetry)
		case *response != webhttp.ResponseMinimal && *response != webhttp.ResponseDeployment:
			err = fmt.Errorf("--response-headers %q: want %s or %s", *response, webhttp.ResponseMinimal, webhttp.ResponseDeployment)
		}
		if err != nil {
			return cfg, run, err
		}
		if err := event.CheckSize(*payload); err != nil {
			return cfg, run, fmt.Errorf("--payload: %w", err)
		}
		padding, err := event.ParsePad(*pad)
		if err != nil {
			return cfg, run, fmt.Errorf("--%w", err)
		}
		cfg.TextPad = padding == event.PadText
		for _, o := range cors {
			if _, err := ParseOrigin(o); err != nil {
				return cfg, run, fmt.Errorf("--cors: %w", err)
			}
		}
		cfg.CORS = cors
		if *rate > 0 {
			return cfg, run, run.Validate()
		}
		return cfg, run, nil
	}
}
