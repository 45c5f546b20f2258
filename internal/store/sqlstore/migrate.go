package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	"github.com/golang-migrate/migrate/v4/source/iofs"

	"github.com/ironflow/ironflow/internal/store"
)

// Migrate applies the migrations in fsys (NNNNNN_name.up.sql…) to the database behind
// drv, a golang-migrate driver named name, and closes drv. A database left dirty by a
// failed migration is reported, not repaired. A ctx that ends stops it between
// migrations. Errors are the driver's own, for the backend to classify.
func Migrate(ctx context.Context, fsys fs.FS, name string, drv database.Driver) error {
	src, err := iofs.New(fsys, ".")
	if err != nil {
		return errors.Join(err, drv.Close())
	}
	m, err := migrate.NewWithInstance("iofs", src, name, drv)
	if err != nil {
		return errors.Join(err, drv.Close())
	}
	defer m.Close()
	// migrate has no context; a graceful stop ends it between migrations.
	stop := context.AfterFunc(ctx, func() {
		select {
		case m.GracefulStop <- true:
		default:
		}
	})
	defer stop()
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return err
	}
	return nil
}

// latestMigration returns the highest version among the migrations in fsys.
func latestMigration(fsys fs.FS) (int64, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return 0, err
	}
	var latest int64
	for _, e := range entries {
		head, _, ok := strings.Cut(e.Name(), "_")
		if !ok {
			continue
		}
		if v, err := strconv.ParseInt(head, 10, 64); err == nil {
			latest = max(latest, v)
		}
	}
	return latest, nil
}

// checkSchema reports whether every migration of d is applied and not dirty.
func checkSchema(ctx context.Context, d Driver) error {
	want, err := latestMigration(d.Migrations())
	if err != nil {
		return err
	}
	version, dirty, err := d.SchemaVersion(ctx)
	if err != nil && d.Sentinel(err) == store.ErrNotFound {
		return fmt.Errorf("%w: no migrations applied", store.ErrUnavailable)
	}
	if err != nil {
		return err
	}
	if dirty || version != want {
		return fmt.Errorf("%w: schema at version %d (dirty %t), want %d", store.ErrUnavailable, version, dirty, want)
	}
	return nil
}
