package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/api/wire"
)

// postJSON sends v as JSON to path (below the API prefix) and decodes the answer into out.
func (c *Client) postJSON(ctx context.Context, path string, q url.Values, v, out any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, wire.Prefix+path, q, body, out)
}

func repoQuery(repo string) url.Values {
	if repo == "" {
		return nil
	}
	return url.Values{"repo": {repo}}
}

// BackupRepos lists the backup repositories the daemon knows.
func (c *Client) BackupRepos(ctx context.Context) ([]v1alpha1.BackupRepository, error) {
	var list struct {
		Items []v1alpha1.BackupRepository `json:"items"`
	}
	err := c.do(ctx, http.MethodGet, wire.Prefix+wire.BackupReposPath, nil, nil, &list)
	return list.Items, err
}

// InitBackupRepo has the daemon create a repository (connect false) or open an
// existing one with its key (connect true).
func (c *Client) InitBackupRepo(ctx context.Context, req v1alpha1.BackupRepositoryRequest, connect bool) (*v1alpha1.BackupRepository, error) {
	op := "/init"
	if connect {
		op = "/connect"
	}
	var out v1alpha1.BackupRepository
	if err := c.postJSON(ctx, wire.BackupReposPath+op, nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RepoLocks lists the locks on backup repository name ("" for the default one).
func (c *Client) RepoLocks(ctx context.Context, name string) ([]v1alpha1.RepositoryLock, error) {
	var list struct {
		Items []v1alpha1.RepositoryLock `json:"items"`
	}
	err := c.do(ctx, http.MethodGet, wire.Prefix+wire.BackupReposPath+"/"+url.PathEscape(repoName(name))+"/locks", nil, nil, &list)
	return list.Items, err
}

// UnlockRepo removes the stale locks on backup repository name, or the one req names.
func (c *Client) UnlockRepo(ctx context.Context, name string, req v1alpha1.RepositoryUnlockRequest) (*v1alpha1.RepositoryUnlockResult, error) {
	var out v1alpha1.RepositoryUnlockResult
	if err := c.postJSON(ctx, wire.BackupReposPath+"/"+url.PathEscape(repoName(name))+"/unlock", nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func repoName(name string) string {
	if name == "" {
		return v1alpha1.DefaultBackupRepository
	}
	return name
}

// Backup takes a backup; progress, when set, is told about each piece uploaded.
func (c *Client) Backup(ctx context.Context, req v1alpha1.BackupRequest, progress func(v1alpha1.BackupProgress)) (*v1alpha1.Backup, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	rc, err := c.Stream(ctx, http.MethodPost, wire.BackupsPath, nil, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var l v1alpha1.BackupStreamLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("decode the daemon's backup progress: %w", err)
		}
		switch {
		case l.Error != nil:
			return nil, &APIError{wire.Status{Kind: "Status", Reason: l.Error.Reason, Message: l.Error.Message}}
		case l.Backup != nil:
			return l.Backup, nil
		case l.Progress != nil && progress != nil:
			progress(*l.Progress)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("the daemon's answer ended early: %w", err)
	}
	return nil, errors.New("the daemon's answer ended without the backup or an error (see the daemon's log)")
}

// Backups lists the backups in a repository ("" for the default one).
func (c *Client) Backups(ctx context.Context, repo string) ([]v1alpha1.Backup, error) {
	var list struct {
		Items []v1alpha1.Backup `json:"items"`
	}
	err := c.do(ctx, http.MethodGet, wire.Prefix+wire.BackupsPath, repoQuery(repo), nil, &list)
	return list.Items, err
}

// VerifyBackup reads a backup back and checks it.
func (c *Client) VerifyBackup(ctx context.Context, repo, id string) (*v1alpha1.BackupVerifyResult, error) {
	var out v1alpha1.BackupVerifyResult
	err := c.do(ctx, http.MethodPost, wire.Prefix+wire.BackupsPath+"/"+url.PathEscape(id)+"/verify", repoQuery(repo), nil, &out)
	return &out, err
}

// DeleteBackup deletes a backup.
func (c *Client) DeleteBackup(ctx context.Context, repo, id string) error {
	return c.do(ctx, http.MethodDelete, wire.Prefix+wire.BackupsPath+"/"+url.PathEscape(id), repoQuery(repo), nil, nil)
}

// PruneBackups applies a retention to a repository's backups.
func (c *Client) PruneBackups(ctx context.Context, req v1alpha1.BackupPruneRequest) (*v1alpha1.BackupPruneResult, error) {
	var out v1alpha1.BackupPruneResult
	err := c.postJSON(ctx, wire.BackupsPath+"/prune", nil, req, &out)
	return &out, err
}

// RestoreBackup recreates a backup's workloads.
func (c *Client) RestoreBackup(ctx context.Context, id string, req v1alpha1.RestoreRequest) (*v1alpha1.RestoreResult, error) {
	var out v1alpha1.RestoreResult
	err := c.postJSON(ctx, wire.BackupsPath+"/"+url.PathEscape(id)+"/restore", nil, req, &out)
	return &out, err
}

// Drill runs a restore drill of a group or workload.
func (c *Client) Drill(ctx context.Context, req v1alpha1.DrillRequest) (*v1alpha1.DrillResult, error) {
	var out v1alpha1.DrillResult
	err := c.postJSON(ctx, wire.DrillsPath, nil, req, &out)
	return &out, err
}
