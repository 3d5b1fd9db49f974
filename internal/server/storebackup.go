package server

import (
	"fmt"
	"net/http"
	"time"
)

// StoreBackupPath is where GET returns a consistent copy of the daemon's store file.
const StoreBackupPath = Prefix + "store/backup"

// storeBackup streams a copy of the whole store, taken in one read transaction while
// the daemon goes on serving (strata backup store).
func (s *Server) storeBackup(w http.ResponseWriter, r *http.Request) {
	longLived(w) // a large store over a slow link
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=strata-store-%s.db", time.Now().UTC().Format("20060102-150405")))
	if err := s.store.Backup(w); err != nil {
		// Headers are gone by now when the copy failed midway: the client sees a short
		// file, which it checks; the log says why.
		s.log.Error("store backup", "err", err)
	}
}
