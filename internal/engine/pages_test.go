package engine_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/engine"
	"github.com/ironflow/ironflow/internal/store"
)

// TestDefinitionPagesAreBounded: a page of definitions ends once it holds 4 MiB of
// them, whatever the limit asked for (the probe read 150 versions with a megabyte of
// description each as one answer of 143 MiB), and the pages together still list every
// version once, in order; the latest versions of many large types page the same way.
func TestDefinitionPagesAreBounded(t *testing.T) {
	eachBackend(t, func(t *testing.T, b bundle) {
		ctx := context.Background()
		const versions = 15
		description := strings.Repeat("d", 700_000)
		for i := range versions {
			body := fmt.Sprintf(`{"description":"%d %s","initial_state":"s","inputs":{"go":{}},"states":{"s":{"on":{"go":{"to":"s"}}}}}`, i, description)
			_, _, err := b.eng.PutDefinition(ctx, "big", []byte(body))
			require.NoError(t, err)
			_, _, err = b.eng.PutDefinition(ctx, fmt.Sprintf("big_%02d", i), []byte(body))
			require.NoError(t, err)
		}

		walk := func(list func(cursor string) (engine.Page[engine.DefinitionView], error)) (got []string, pages int) {
			cursor := ""
			for {
				page, err := list(cursor)
				require.NoError(t, err)
				pages++
				size := 0
				for _, d := range page.Items {
					size += len(d.Definition)
					got = append(got, fmt.Sprintf("%s/%d", d.Type, d.Version))
				}
				require.NotEmpty(t, page.Items)
				require.Less(t, size-len(page.Items[len(page.Items)-1].Definition), 4<<20, "a page ends once it holds 4 MiB")
				if page.NextCursor == "" {
					return got, pages
				}
				cursor = page.NextCursor
			}
		}
		got, pages := walk(func(c string) (engine.Page[engine.DefinitionView], error) {
			return b.eng.ListDefinitionVersions(ctx, "big", c, engine.MaxPageSize)
		})
		var want []string
		for i := range versions {
			want = append(want, fmt.Sprintf("big/%d", i+1))
		}
		require.Equal(t, want, got)
		require.Equal(t, 3, pages)

		got, _ = walk(func(c string) (engine.Page[engine.DefinitionView], error) {
			return b.eng.ListDefinitions(ctx, c, engine.MaxPageSize)
		})
		require.Len(t, got, versions+2) // big, big_00 … big_14, order
		require.Equal(t, "big/15", got[0])
	})
}

// TestListPagesAreBounded: every list under an instance, and the list of instances,
// ends a page once its rows hold 4 MiB (inputs of 200 KB, their events, instances with
// 200 KB of state), and walking the pages still yields every row once, in order.
func TestListPagesAreBounded(t *testing.T) {
	eachBackend(t, func(t *testing.T, b bundle) {
		ctx := context.Background()
		_, _, err := b.eng.PutDefinition(ctx, "blob", []byte(`{"initial_state":"s","inputs":{"put":{}},"states":{"s":{"on":{"put":{"to":"s"}}}}}`))
		require.NoError(t, err)
		const n = 25
		blob := strings.Repeat("b", 200_000)
		for i := range n {
			_, err := b.eng.Execute(ctx, "blob", "one", in("put", fmt.Sprintf(`{"i":%d,"b":"%s"}`, i, blob)), engine.ExecuteOptions{})
			require.NoError(t, err)
			_, err = b.eng.Execute(ctx, "blob", fmt.Sprintf("i-%02d", i), in("put", fmt.Sprintf(`{"b":"%s"}`, blob)), engine.ExecuteOptions{})
			require.NoError(t, err)
		}
		// walk pages with next(cursor) → items' sizes and keys, checking each page.
		walk := func(next func(cursor string) ([]int, []string, string)) []string {
			var all []string
			cursor := ""
			for pages := 1; ; pages++ {
				sizes, keys, nextCursor := next(cursor)
				require.NotEmpty(t, keys)
				total := 0
				for _, s := range sizes[:len(sizes)-1] {
					total += s
				}
				require.Less(t, total, 4<<20, "page %d", pages)
				all = append(all, keys...)
				if nextCursor == "" {
					require.Greater(t, pages, 1, "more than 4 MiB in all: more than one page")
					return all
				}
				cursor = nextCursor
			}
		}
		var want []string
		for i := range n {
			want = append(want, fmt.Sprint(i+1))
		}
		require.Equal(t, want, walk(func(c string) ([]int, []string, string) {
			p, err := b.eng.ListInputs(ctx, "blob", "one", c, engine.MaxPageSize)
			require.NoError(t, err)
			sizes, keys := sizesAndKeys(p.Items, func(it engine.InputView) (int, string) { return len(it.Data), fmt.Sprint(it.Version) })
			return sizes, keys, p.NextCursor
		}))
		require.Equal(t, want, walk(func(c string) ([]int, []string, string) {
			var after int64
			if c != "" {
				_, err := fmt.Sscan(c, &after)
				require.NoError(t, err)
			}
			p, err := b.eng.ListEvents(ctx, "blob", "one", after, engine.MaxPageSize)
			require.NoError(t, err)
			sizes, keys := sizesAndKeys(p.Items, func(it engine.EventView) (int, string) { return len(it.Data), fmt.Sprint(it.Seq) })
			return sizes, keys, p.NextCursor
		}))
		got := walk(func(c string) ([]int, []string, string) {
			p, err := b.eng.ListWorkflows(ctx, store.ListInstancesParams{Type: "blob", Cursor: c, Limit: engine.MaxPageSize})
			require.NoError(t, err)
			sizes, keys := sizesAndKeys(p.Items, func(it engine.WorkflowView) (int, string) { return len(it.State.Data), it.ID })
			return sizes, keys, p.NextCursor
		})
		require.Len(t, got, n+1)
		require.Equal(t, "one", got[0])

		// The feed pages the same way; it never ends with "", an empty page is its
		// end. On PostgreSQL a transaction of another process sharing the server
		// holds the feed back while it runs (the horizon is the server's): an empty
		// page that says so is waited out, not taken for the end.
		var feed []string
		after := ""
		pages := 0
		for heldSince := time.Now(); ; {
			p, err := b.eng.ReadFeed(ctx, after, "blob", engine.MaxPageSize)
			require.NoError(t, err)
			if len(p.Items) == 0 {
				if !p.HeldBack {
					break
				}
				require.Less(t, time.Since(heldSince), time.Minute, "the feed held back by another transaction for a minute")
				time.Sleep(10 * time.Millisecond)
				continue
			}
			heldSince = time.Now()
			pages++
			total := 0
			for i, it := range p.Items {
				feed = append(feed, fmt.Sprintf("%s/%d", it.WorkflowID, it.Seq))
				if i < len(p.Items)-1 {
					total += len(it.Data)
				}
			}
			require.Less(t, total, 4<<20, "feed page %d", pages)
			after = p.NextCursor
		}
		require.Greater(t, pages, 1, "more than 4 MiB in all: more than one page")
		require.Len(t, feed, 2*n)
		require.Len(t, slices.Compact(slices.Sorted(slices.Values(feed))), 2*n, "no event twice")
	})
}

// sizesAndKeys returns each item's size and key, as of.
func sizesAndKeys[T any](items []T, of func(T) (int, string)) ([]int, []string) {
	sizes, keys := make([]int, len(items)), make([]string, len(items))
	for i, it := range items {
		sizes[i], keys[i] = of(it)
	}
	return sizes, keys
}
