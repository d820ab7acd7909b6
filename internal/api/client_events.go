package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"smessenger/internal/store"
)

// ErrStreamEnded is returned by StreamEvents when the server ends the stream
// (shutdown, device revoked, connection cut). The caller reconnects and
// resumes from the last event it saw; a revoked device will then be refused.
var ErrStreamEnded = errors.New("api: event stream ended by the server")

// maxEventLine bounds one event line; events are small (a mailbox name and
// a few flags).
const maxEventLine = 64 << 10

// StreamEvents calls fn for every event with Seq > after, first the backlog
// and then live ones, until ctx ends (ctx.Err()), fn fails (its error), or
// the stream ends (ErrStreamEnded or the transport error).
func (c *Client) StreamEvents(ctx context.Context, after uint64, fn func(store.Event) error) error {
	resp, err := c.do(ctx, http.MethodGet, "/v1/events/stream?after="+strconv.FormatUint(after, 10), "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 4096), maxEventLine)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || bytes.Equal(line, []byte("{}")) {
			continue // keep-alive
		}
		var ev store.Event
		if err := json.Unmarshal(line, &ev); err != nil || ev.Seq == 0 {
			return fmt.Errorf("%w: bad event line", ErrProtocol)
		}
		if ev.Seq <= after {
			continue
		}
		after = ev.Seq
		if err := fn(ev); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrStreamEnded, err)
	}
	return ErrStreamEnded
}
