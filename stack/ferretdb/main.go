// Command ferretdb-local serves the MongoDB wire protocol on loopback for the
// tenantstream stack: FerretDB's embeddable package over its SQLite backend.
// Embedding (rather than `go install .../cmd/ferretdb`) avoids the release-only
// version file that a module-proxy build of the FerretDB command lacks.
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to serve the MongoDB wire protocol on")
	dataDir := flag.String("data-dir", "data", "directory of the SQLite databases")
	flag.Parse()

	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		log.Fatalf("data directory %s: %v", *dataDir, err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	server, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + *dataDir + "/",
	})
	if err != nil {
		log.Fatalf("start FerretDB: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logger.Info("serving MongoDB wire protocol", "listen", *listen, "data", *dataDir)
	if err := server.Run(ctx); err != nil {
		log.Fatalf("FerretDB stopped: %v", err)
	}
}
