// The benchmark's baselines: express over HTTPS that parses the body and answers a constant
// review. Run by bench/webhook.ts as: node webhookBaseline.js PORT CERT KEY [ANSWER]
// Without ANSWER it answers a constant allow. With ANSWER, a file holding an AdmissionReview
// answer (the webhook's own answer to the benchmark's review), it answers that one, the
// request's uid put in: a constant patch of the real answer's size, through the same express
// path (express.json in, res.json out), so that the gap left to the webhook is its own work
// and not the bytes it must write.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import express, { type Request, type Response } from 'express';

interface Answer {
  apiVersion: string;
  kind: string;
  response: { uid: string } & Record<string, unknown>;
}

const [port, certFile, keyFile, answerFile] = process.argv.slice(2);
const constant: Answer = answerFile
  ? (JSON.parse(readFileSync(answerFile, 'utf8')) as Answer)
  : { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: '', allowed: true } };
const app = express();
app.disable('x-powered-by');
app.disable('etag');
app.post('/mutate', express.json({ limit: '3mb', type: () => true }), (req: Request, res: Response) => {
  const uid = (req.body as { request?: { uid?: string } }).request?.uid ?? '';
  res.json({ ...constant, response: { ...constant.response, uid } });
});
app.get('/healthz', (_req: Request, res: Response) => {
  res.json({ status: 'ok' });
});
createServer({ cert: readFileSync(certFile as string), key: readFileSync(keyFile as string) }, app).listen(Number(port), '127.0.0.1');
