"""Prepare the moto S3 server for the Object Lock tests.

moto enforces signatures and IAM permissions only after its first
INITIAL_NO_AUTH_ACTION_COUNT requests; this script makes exactly those
requests: a user, its access key, its policy, and a bucket with Object Lock
enabled. Prints the access key id and secret, one line.
"""
import json
import sys

import boto3

endpoint, bucket = sys.argv[1], sys.argv[2]
anon = dict(endpoint_url=endpoint, region_name="us-east-1",
            aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
iam = boto3.client("iam", **anon)
iam.create_user(UserName="stockops")
key = iam.create_access_key(UserName="stockops")["AccessKey"]
iam.put_user_policy(UserName="stockops", PolicyName="s3", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
boto3.client("s3", **anon).create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
print(key["AccessKeyId"], key["SecretAccessKey"])
