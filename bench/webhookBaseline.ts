// The benchmark's baseline: express over HTTPS that parses the body and answers a
// constant allow. Run by bench/webhook.ts as: node webhookBaseline.js PORT CERT KEY
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import express, { type Request, type Response } from 'express';

const [port, certFile, keyFile] = process.argv.slice(2);
const app = express();
app.disable('x-powered-by');
app.disable('etag');
app.post('/mutate', express.json({ limit: '3mb', type: () => true }), (req: Request, res: Response) => {
  const uid = (req.body as { request?: { uid?: string } }).request?.uid ?? '';
  res.json({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, allowed: true } });
});
app.get('/healthz', (_req: Request, res: Response) => {
  res.json({ status: 'ok' });
});
createServer({ cert: readFileSync(certFile as string), key: readFileSync(keyFile as string) }, app).listen(Number(port), '127.0.0.1');
