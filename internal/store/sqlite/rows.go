package sqlite

import (
	"context"
	"strings"
)

// rowWrite is a write of rows of fixed columns: its head, VALUES with one "(?, …)"
// tuple per row, and its tail. It is prepared (statements.go) for every size in
// chunkSizes, so one row is one prepared statement and a batch of any size a few (100
// rows: 64 + 16 + 16 + 4), each writing its rows in one executor run, rather than a
// statement per row or a text compiled per batch size.
type rowWrite struct {
	cols  int
	texts []string // texts[i] writes chunkSizes[i] rows
}

// chunkSizes are the row counts a rowWrite is prepared for, largest first; the last is 1.
var chunkSizes = []int{64, 16, 4, 1}

// rowWrites are every rowWrite, whose statements are prepared on the writer.
var rowWrites []rowWrite

func newRowWrite(head string, cols int, tail string) rowWrite {
	tuple := "(" + strings.Repeat("?, ", cols-1) + "?)"
	w := rowWrite{cols: cols, texts: make([]string, len(chunkSizes))}
	for i, n := range chunkSizes {
		w.texts[i] = head + " VALUES " + strings.Repeat(tuple+", ", n-1) + tuple + tail
	}
	rowWrites = append(rowWrites, w)
	return w
}

// one is the statement that writes one row.
func (w rowWrite) one() string { return w.texts[len(w.texts)-1] }

// exec writes rows, each of w.cols values, with as few statements as chunkSizes allow.
func (w rowWrite) exec(ctx context.Context, tx *wtx, rows [][]any) error {
	args := make([]any, 0, min(len(rows), chunkSizes[0])*w.cols)
	for i, n := range chunkSizes {
		for len(rows) >= n {
			args = args[:0]
			for _, row := range rows[:n] {
				args = append(args, row...)
			}
			if _, err := tx.ExecContext(ctx, w.texts[i], args...); err != nil {
				return err
			}
			rows = rows[n:]
		}
	}
	return nil
}
