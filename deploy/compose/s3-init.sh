#!/bin/sh
# One-shot setup of the compose bucket (the `s3-init` service of docker-compose.yml): the bucket
# exists, and its CORS rules (s3-cors.json) let the app's pages upload to it directly. Safe to
# run on every `up`. Uses the AWS_* variables of the service.
set -eu
bucket="${S3_BUCKET:?}"

# Garage makes the bucket on its first start; any other S3-compatible store gets it here.
if ! aws s3api head-bucket --bucket "$bucket" >/dev/null 2>&1; then
    aws s3api create-bucket --bucket "$bucket"
fi

# A page served from http://localhost:8080 PUTs (or POSTs) the photo to a presigned URL on
# another origin: the browser's preflight needs these rules. To upload from another address
# (IMAGESHARK_PUBLIC_BASE_URL), add its origin to AllowedOrigins in s3-cors.json.
aws s3api put-bucket-cors --bucket "$bucket" --cors-configuration file:///s3-cors.json
aws s3api get-bucket-cors --bucket "$bucket"
echo "bucket $bucket ready"
