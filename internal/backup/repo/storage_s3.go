package repo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Environment variables holding S3 credentials. The STRATA_ pair wins; the
// AWS pair is the fallback that other S3 tools also read.
const (
	EnvS3AccessKey    = "STRATA_S3_ACCESS_KEY"
	EnvS3SecretKey    = "STRATA_S3_SECRET_KEY" //nolint:gosec // G101: the name of a variable, not a secret
	envAWSAccessKeyID = "AWS_ACCESS_KEY_ID"
	envAWSSecretKey   = "AWS_SECRET_ACCESS_KEY" //nolint:gosec // G101: the name of a variable, not a secret
)

// s3Storage keeps each object as an S3 object named Prefix+name. S3 makes
// an object visible only once its upload is complete, which is Put's
// atomicity; objects are at most a chunk (8 MiB) plus a little, so each
// is one PUT request.
type s3Storage struct {
	client *minio.Client
	bucket string
	prefix string
	url    string
}

var _ Storage = (*s3Storage)(nil)

// s3Credentials reads the credentials from the environment.
func s3Credentials() (access, secret string, err error) {
	access, secret = os.Getenv(EnvS3AccessKey), os.Getenv(EnvS3SecretKey)
	if access != "" || secret != "" {
		if access == "" || secret == "" {
			return "", "", fmt.Errorf("%w: set both %s and %s, or neither", ErrInvalid, EnvS3AccessKey, EnvS3SecretKey)
		}
		return access, secret, nil
	}
	access, secret = os.Getenv(envAWSAccessKeyID), os.Getenv(envAWSSecretKey)
	if access == "" || secret == "" {
		return "", "", fmt.Errorf("%w: no S3 credentials: set %s and %s (or %s and %s)",
			ErrInvalid, EnvS3AccessKey, EnvS3SecretKey, envAWSAccessKeyID, envAWSSecretKey)
	}
	return access, secret, nil
}

func newS3Storage(_ context.Context, loc Location) (*s3Storage, error) {
	url := loc.String()
	access, secret, err := s3Credentials()
	if err != nil {
		return nil, &StorageError{Op: "open", URL: url, Err: err}
	}
	client, err := minio.New(loc.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(access, secret, ""),
		Secure:     !loc.Insecure,
		Region:     loc.Region,
		MaxRetries: loc.Retries,
	})
	if err != nil {
		return nil, &StorageError{Op: "open", URL: url, Err: err}
	}
	return &s3Storage{client: client, bucket: loc.Bucket, prefix: loc.Prefix, url: url}, nil
}

func (s *s3Storage) URL() string { return s.url }

func (s *s3Storage) fail(op, name string, err error) error {
	switch minio.ToErrorResponse(err).Code {
	case minio.NoSuchKey:
		err = fmt.Errorf("%w: %w", ErrNotFound, err)
	case minio.NoSuchBucket:
		err = fmt.Errorf("%w: bucket %q does not exist (Init creates it): %w", ErrNotFound, s.bucket, err)
	}
	return &StorageError{Op: op, URL: s.url, Name: name, Err: err}
}

func (s *s3Storage) Put(ctx context.Context, name string, data []byte) error {
	if err := checkName(s.url, "put", name); err != nil {
		return err
	}
	_, err := s.client.PutObject(ctx, s.bucket, s.prefix+name, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: "application/octet-stream", DisableMultipart: true})
	if err != nil {
		return s.fail("put", name, err)
	}
	return nil
}

func (s *s3Storage) Get(ctx context.Context, name string) ([]byte, error) {
	if err := checkName(s.url, "get", name); err != nil {
		return nil, err
	}
	obj, err := s.client.GetObject(ctx, s.bucket, s.prefix+name, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.fail("get", name, err)
	}
	defer obj.Close()
	data, err := io.ReadAll(obj)
	if err != nil {
		return nil, s.fail("get", name, err)
	}
	return data, nil
}

func (s *s3Storage) Stat(ctx context.Context, name string) (ObjectInfo, error) {
	if err := checkName(s.url, "stat", name); err != nil {
		return ObjectInfo{}, err
	}
	oi, err := s.client.StatObject(ctx, s.bucket, s.prefix+name, minio.StatObjectOptions{})
	if err != nil {
		return ObjectInfo{}, s.fail("stat", name, err)
	}
	return ObjectInfo{Name: name, Size: oi.Size, ModTime: oi.LastModified}, nil
}

func (s *s3Storage) Delete(ctx context.Context, name string) error {
	if err := checkName(s.url, "delete", name); err != nil {
		return err
	}
	err := s.client.RemoveObject(ctx, s.bucket, s.prefix+name, minio.RemoveObjectOptions{})
	if err != nil && minio.ToErrorResponse(err).Code != minio.NoSuchKey {
		return s.fail("delete", name, err)
	}
	return nil
}

func (s *s3Storage) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine when fn fails
	objs := s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true})
	for oi := range objs {
		if oi.Err != nil {
			return s.fail("list", prefix, oi.Err)
		}
		name := oi.Key[len(s.prefix):]
		if err := fn(ObjectInfo{Name: name, Size: oi.Size, ModTime: oi.LastModified}); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return s.fail("list", prefix, err)
	}
	return nil
}

// ensureBucket creates the bucket if it does not exist (Init only).
func (s *s3Storage) ensureBucket(ctx context.Context, region string) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return s.fail("open", "", err)
	}
	if ok {
		return nil
	}
	err = s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: region})
	if err != nil {
		code := minio.ToErrorResponse(err).Code
		if code == "BucketAlreadyOwnedByYou" {
			return nil
		}
		return s.fail("create bucket", "", err)
	}
	return nil
}
