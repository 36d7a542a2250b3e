// s3rver_as_s3.js - preloaded into the test s3rver (node -r, lib.sh's
// start_s3rver) so that it keeps one rule of S3 it lacks: a copy makes a
// new object, so a copy onto the same key (the way s3fs, aws-cli and skyfs
// change only an object's metadata: x-amz-metadata-directive REPLACE)
// moves the object's Last-Modified, which HEAD and listings report.
// s3rver keeps Last-Modified as the mtime of its object file and, copying
// a key onto itself, rewrites only the metadata file: this sets the object
// file's mtime to now.  (A copy to another key writes a new file anyway.)
// And a second: a PUT replaces an object whole or not at all.  s3rver
// writes the body straight into the object's file, so a client that dies
// in the middle of a PUT (power_cut.sh) leaves the first bytes of its
// body as the object, with the old object's metadata; here the body goes
// to a file in its folder (a short name listings skip) and is renamed into place
// once all of it arrived.
'use strict';

const path = require('path');
const fs = require('fs');
const crypto = require('crypto');
const { Transform, pipeline } = require('stream');

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

let partials = 0;
Store.prototype.putObject = async function (object) {
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  await fs.promises.mkdir(path.dirname(objectPath), { recursive: true });
  const partial = path.join(path.dirname(objectPath), `.partial-${process.pid}-${++partials}`);
  const md5 = crypto.createHash('md5');
  let size = 0;
  try {
    if (Buffer.isBuffer(object.content)) {
      await fs.promises.writeFile(partial, object.content);
      md5.update(object.content);
      size = object.content.length;
    } else {
      await new Promise((resolve, reject) => {
        pipeline(object.content,
                 new Transform({
                   transform(chunk, encoding, callback) {
                     md5.update(chunk, encoding);
                     size += chunk.length;
                     callback(null, chunk);
                   },
                 }),
                 fs.createWriteStream(partial),
                 err => (err ? reject(err) : resolve()));
      });
    }
    await fs.promises.rename(partial, objectPath);
  } catch (err) {
    await fs.promises.rm(partial, { force: true });
    throw err;
  }
  const digest = md5.digest('hex');
  await this.putMetadata(object.bucket, object.key, object.metadata, digest);
  return { size, md5: digest };
};
