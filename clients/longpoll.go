package clients

import (
	"context"
	"pushbench/transport"
)

// longPoll is the long-polling subscriber: GET /longpoll?since=N, re-polled
// as soon as each answer is delivered.
type longPoll struct {
	poller
}

var _ Subscriber = (*longPoll)(nil)

func init() {
	registerClient(transport.LongPoll, func(cfg Config) (Subscriber, error) { return newLongPoll(cfg), nil })
}

func newLongPoll(cfg Config) *longPoll {
	return &longPoll{poller: newPoller(transport.LongPoll, "/longpoll", cfg)}
}

func (l *longPoll) Subscribed() <-chan struct{} { return l.sub.ch }

// Run long-polls until ctx ends. It must be called once.
//
// Subscribed closes when the first request has been written to the socket:
// from then on the server holds it, so the subscription is in place before
// any answer.
//
// There is no client-side timeout: the server holds a request for up to its
// --hold (30 s by default) and answers [] then; a timeout shorter than that
// would turn every quiet period into an error. ctx bounds every request.
func (l *longPoll) Run(ctx context.Context, h Handler) error {
	defer l.close()
	l.d.h = h
	traced := l.client.countRequests(ctx, l.sub)
	return l.sess.run(ctx, func(context.Context) (bool, error) {
		return l.poll(traced)
	})
}
