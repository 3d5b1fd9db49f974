package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"strata.dev/strata/internal/objects"
)

func newEvents(s Streams) *cobra.Command {
	var (
		watch  bool
		output string
	)
	cmd := &cobra.Command{
		Use:   "events [-w] [-o table|json]",
		Short: "Show what happened: instances started, exited, OOM-killed, restarted",
		Long: `Events lists the daemon's recent events, oldest first (the daemon keeps the last
thousand). An event that repeats (same type, reason, object, instance and message) within
ten minutes of its last time is one event with a count: "FailedStart x37 over 12m", its
time the last one (JSON: count and firstTime). With -w it keeps watching and prints new
events as they happen, and a series again each time it grows; -o json prints one JSON
object per line.`,
		Example: `  strata events
  strata events -w`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := newClientFor(c, output)
			if err != nil {
				return err
			}
			var list struct {
				ResourceVersion string            `json:"resourceVersion"`
				Items           []json.RawMessage `json:"items"`
			}
			if err := cl.List(c.Context(), "events", &list); err != nil {
				return failure(err)
			}
			tw := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
			if output == "table" {
				fmt.Fprintln(tw, "TIME\tTYPE\tREASON\tOBJECT\tINSTANCE\tMESSAGE")
			}
			for _, raw := range list.Items {
				if err := printEvent(tw, raw, output); err != nil {
					return err
				}
			}
			if err := tw.Flush(); err != nil {
				return failure(err)
			}
			if !watch {
				return nil
			}
			err = cl.Watch(c.Context(), "events", list.ResourceVersion, func(typ string, obj json.RawMessage) error {
				// MODIFIED: a repeat folded into a series; the line shows its new count.
				if typ != "ADDED" && typ != "MODIFIED" {
					return nil
				}
				if err := printEvent(tw, obj, output); err != nil {
					return err
				}
				return tw.Flush()
			})
			if err != nil {
				return failure(err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "keep watching for new events")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func printEvent(w io.Writer, raw json.RawMessage, output string) error {
	if output == "json" {
		_, err := fmt.Fprintf(w, "%s\n", compact(raw))
		return err
	}
	var e objects.Event
	if err := json.Unmarshal(raw, &e); err != nil {
		return failure(err)
	}
	_, err := fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format("15:04:05"), e.Type, seriesReason(e), e.Object, dash(e.Instance), e.Message)
	return err
}

// seriesReason is an event's reason, with its count and span when it repeated:
// "FailedStart x37 over 12m".
func seriesReason(e objects.Event) string {
	if e.Count < 2 || e.FirstTime == nil {
		return e.Reason
	}
	return fmt.Sprintf("%s x%d over %s", e.Reason, e.Count, span(e.Time.Sub(*e.FirstTime)))
}

func compact(raw json.RawMessage) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}
