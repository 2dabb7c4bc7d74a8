import { startEmbeddedS3 } from './src/services/s3.ts';
import { S3Client, CreateBucketCommand } from '@aws-sdk/client-s3';
const s = await startEmbeddedS3({ directory: '/tmp/s3proto', port: 18900 });
const c = new S3Client({ endpoint: s.endpoint, region: 'us-east-1', credentials: s.credentials, forcePathStyle: true });
await c.send(new CreateBucketCommand({ Bucket: 'uploads' })).catch(() => {});
console.log(s.endpoint);
setInterval(() => {}, 1000);
