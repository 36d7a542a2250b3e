// s3rver_as_s3.js - preloaded into the test s3rver (node -r, lib.sh's
// start_s3rver) so that it keeps one rule of S3 it lacks: a copy makes a
// new object, so a copy onto the same key (the way s3fs, aws-cli and skyfs
// change only an object's metadata: x-amz-metadata-directive REPLACE)
// moves the object's Last-Modified, which HEAD and listings report.
// s3rver keeps Last-Modified as the mtime of its object file and, copying
// a key onto itself, rewrites only the metadata file: this sets the object
// file's mtime to now.  (A copy to another key writes a new file anyway.)
'use strict';

const path = require('path');
const fs = require('fs');

const Store = require(path.join(__dirname, 'node_modules', 's3rver', 'lib', 'stores',
                                'filesystem.js'));
const copyObject = Store.prototype.copyObject;

Store.prototype.copyObject = async function (srcBucket, srcKey, destBucket, destKey,
                                             replacementMetadata) {
  const src = this.getResourcePath(srcBucket, srcKey, 'object');
  const dest = this.getResourcePath(destBucket, destKey, 'object');
  if (src === dest) {
    const now = new Date();
    await fs.promises.utimes(dest, now, now);
  }
  return copyObject.call(this, srcBucket, srcKey, destBucket, destKey, replacementMetadata);
};
