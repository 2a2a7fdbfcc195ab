package event

import (
	"fmt"
	"math"
	"sync"
)

// Pad says what fills an event's padding.
type Pad uint8

const (
	// PadX pads with 'x', the historic padding: every run before text
	// padding existed used it. It compresses to almost nothing, so gzip
	// and permessage-deflate would look far better on it than on any
	// real payload.
	PadX Pad = iota
	// PadText pads with deterministic pseudo-text (TextPad): words of a
	// fixed vocabulary, JSON-ish keys and numbers, drawn from one fixed
	// random sequence, a different stretch of it for every seq. It
	// compresses about as well as the text of a real JSON message (see
	// TextPad for the measured ratios).
	PadText
)

// String is the flag spelling of p: "x" or "text".
func (p Pad) String() string {
	switch p {
	case PadX:
		return "x"
	case PadText:
		return "text"
	}
	return fmt.Sprintf("Pad(%d)", uint8(p))
}

// ParsePad parses a flag value: "x" or "text".
func ParsePad(s string) (Pad, error) {
	switch s {
	case "x":
		return PadX, nil
	case "text":
		return PadText, nil
	}
	return PadX, fmt.Errorf("pad %q: want x or text", s)
}

// textPeriod is how many offsets the text padding starts at: a stretch of
// the text far longer than deflate's 32 KiB window, so that consecutive
// events share no more with each other than with any other text of the same
// vocabulary (a stream compressor finds no long copies of a previous event).
const textPeriod = 1 << 20

// vocabulary is what the text padding is made of: common English words and
// the keys and values of JSON messages (a chat message, a price tick, a
// notification), none containing '"' or '\\' so that the padding needs no
// escaping inside its JSON string.
var vocabulary = [...]string{
	// JSON-ish keys and values.
	"id", "user", "user_id", "name", "type", "status", "ok", "error", "true", "false",
	"null", "message", "text", "body", "title", "channel", "room", "event", "update", "created_at",
	"updated_at", "timestamp", "price", "bid", "ask", "last", "volume", "symbol", "quote", "trade",
	"side", "buy", "sell", "size", "amount", "currency", "USD", "EUR", "account", "order",
	"items", "count", "total", "page", "limit", "offset", "data", "meta", "version", "source",
	"target", "action", "payload", "session", "token", "expires", "level", "info", "warn", "debug",
	"score", "rank", "team", "player", "match", "round", "state", "online", "offline", "typing",
	"read", "sent", "delivered", "seen", "reply", "thread", "parent", "author", "avatar", "url",
	"https://example.com/", "image", "png", "width", "height", "lat", "lon", "city", "country", "region",
	"en-US", "UTC", "2025-11-25T14:30:00Z", "{", "}", "[", "]", ":", ",", "=",
	// Common English words.
	"the", "of", "and", "a", "to", "in", "is", "you", "that", "it",
	"he", "was", "for", "on", "are", "as", "with", "his", "they", "I",
	"at", "be", "this", "have", "from", "or", "one", "had", "by", "word",
	"but", "not", "what", "all", "were", "we", "when", "your", "can", "said",
	"there", "use", "an", "each", "which", "she", "do", "how", "their", "if",
	"will", "up", "other", "about", "out", "many", "then", "them", "these", "so",
	"some", "her", "would", "make", "like", "him", "into", "time", "has", "look",
	"two", "more", "write", "go", "see", "number", "no", "way", "could", "people",
	"my", "than", "first", "water", "been", "call", "who", "oil", "its", "now",
	"find", "long", "down", "day", "did", "get", "come", "made", "may", "part",
	"over", "new", "sound", "take", "only", "little", "work", "know", "place", "year",
	"live", "me", "back", "give", "most", "very", "after", "thing", "our", "just",
	"good", "sentence", "man", "think", "say", "great", "where", "help", "through", "much",
	"before", "line", "right", "too", "mean", "old", "any", "same", "tell", "boy",
	"follow", "came", "want", "show", "also", "around", "form", "three", "small", "set",
	"put", "end", "does", "another", "well", "large", "must", "big", "even", "such",
	"because", "turn", "here", "why", "ask", "went", "men", "need", "land", "different",
	"home", "us", "move", "try", "kind", "hand", "picture", "again", "change", "off",
	"play", "spell", "air", "away", "animal", "house", "point", "letter", "mother", "answer",
	"found", "study", "still", "learn", "should", "America", "world", "high", "every", "near",
	"add", "food", "between", "own", "below", "country", "plant", "school", "father", "keep",
	"tree", "never", "start", "city", "earth", "eye", "light", "thought", "head", "under",
	"story", "saw", "left", "don't", "few", "while", "along", "might", "close", "something",
}

// textLen is the length of the text: every offset below textPeriod has
// MaxSize bytes after it.
const textLen = textPeriod + MaxSize

// text is the padding text, built on first use (2 MiB, a few milliseconds).
var text = sync.OnceValue(buildText)

// buildText strings words of the vocabulary together with spaces, now and
// then a comma or colon, and every eighth token or so a number, all drawn
// from a fixed xorshift sequence, so that every process builds the same
// text. It is printable ASCII without '"' and '\\'.
func buildText() []byte {
	b := make([]byte, 0, textLen+64)
	x := uint64(0x9e3779b97f4a7c15)
	next := func() uint64 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		return x
	}
	for len(b) < textLen {
		r := next()
		switch {
		case r%8 == 0:
			b = appendUint(b, (r>>8)%100000)
		default:
			b = append(b, vocabulary[zipf(r>>11)]...)
		}
		switch (r >> 32) % 16 {
		case 0:
			b = append(b, ", "...)
		case 1:
			b = append(b, ": "...)
		default:
			b = append(b, ' ')
		}
	}
	return b[:textLen]
}

// zipf maps 53 random bits to an index of the vocabulary with Zipf's law
// (rank k drawn with probability about 1/(k·ln n)): a word's index is
// ⌊n^u⌋-1 for u uniform in [0,1), so that common words come back often,
// as in any text. math.Pow is pure Go on every platform this builds for
// (assembly only on s390x), so the text is the same everywhere.
func zipf(bits uint64) int {
	u := float64(bits&(1<<53-1)) / (1 << 53)
	return min(int(math.Pow(float64(len(vocabulary)), u))-1, len(vocabulary)-1)
}

func appendUint(b []byte, v uint64) []byte {
	var d [20]byte
	i := len(d)
	for {
		i--
		d[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(b, d[i:]...)
}

// textOffset is where the text padding of event seq starts: a hash of seq
// (splitmix64), so consecutive events start far apart.
func textOffset(seq uint64) int {
	z := seq + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return int(z % textPeriod)
}

// TextPad returns the first n bytes (n ≤ MaxSize) of the text padding of
// event seq, shared read-only: the bytes PadText writes after "pad":".
//
// How gzip -6 compresses 1,000 consecutive 256-byte events
// (TestTextPadCompression; 'x' padding in brackets):
//
//   - each message on its own, gzip (a poll answer of one event): 1.27x (3.84x)
//   - each message on its own, raw deflate as permessage-deflate without
//     context takeover sends it: 1.42x (5.73x)
//   - one gzip stream flushed after every event (SSE): 2.34x (16.5x)
//   - one gzip body of all 1,000 (a poll answer of a batch): 3.10x (42.9x)
func TextPad(seq uint64, n int) []byte {
	off := textOffset(seq)
	return text()[off : off+n : off+n]
}
