// receiver.js: a seed-style Node.js RTMS receiver, the second fixed point of
// bench/run.py --node (issue 12: "host CPU <= 0.3x a seed-style Node.js
// receiver, express + ws, one file write per packet, in the same run").
//
// Written the way Zoom's own Node samples are (zoom/RTMS-ZCC-Sample
// rtms/server.js and rtms/audioHelper.js, rtms-samples boilerplate/working_js):
// an express app whose webhook route answers endpoint.url_validation and, on
// contact_center.voice_rtms_started or meeting.rtms_started, opens the
// signaling WebSocket (ws) with the signed msg 1, opens the media WebSocket
// from msg 2 with the signed msg 3, sends msg 7 on signaling after msg 4,
// answers msg 12 with msg 13 on both sockets, and for every msg 14 parses the
// whole message with JSON.parse, decodes the base64 with Buffer.from and
// hands the PCM to the channel's fs.WriteStream: one write call per packet
// (docs/protocol.md §3.2-§3.9, §4.2-§4.4). It stops on msg 8 TERMINATED
// (§3.8) or the *_rtms_stopped webhook (§2.2), once the media socket has
// delivered what was sent before (see ending()).
//
// Output, the same as bench/ref-receiver's so bench/run.py verifies both the
// same way: DIR/<rtms_stream_id>/<channel_id>.wav (mono S16LE at the rate of
// the msg 4 echo; each packet placed at its timestamp counted from the
// channel's first packet, gaps written as zeros, packets behind the write
// position dropped), then DIR/<rtms_stream_id>/done.json
// ({"rtms_stream_id", "packets", "how", "channels": {channel_id: {"packets",
// "samples"}}}) once every WAV is closed and its header written.
//
//   node receiver.js --out DIR [--port N] [--ready-file FILE] [--write stream|sync]
//
// --port: webhook port on 127.0.0.1 (0, the default, = any free port);
// --ready-file: {"port": N} is written there once listening (what
// zoomrtms-host --ready-file writes); --write stream (default, the samples'
// fs.createWriteStream + write() per packet, done by libuv's thread pool) or
// sync (fs.writeSync per packet at its file position, on the main thread).
// Credentials: ZOOM_APP_CLIENT_ID / ZOOM_APP_CLIENT_SECRET (the handshake
// signature); ZOOM_SECRET_TOKEN, when set, verifies x-zm-signature (§2.5,
// 300 s window, constant-time compare) and answers the url_validation
// challenge (§2.4). ws:// and wss:// alike (the ws package).
// SIGTERM/SIGINT: finalize every open engagement, then exit 0.
//
// A measuring stick, not a product: no reconnection, no cross-channel
// alignment. Differences from the samples, each making this receiver cheaper
// or equal, never dearer: no per-packet fs.existsSync() (the ZCC sample
// calls it for every packet), no console.log of events or every 100th packet,
// media_type 1 (audio) on the audio URL where the ZCC sample asks 32 with
// transcript params (the sim refuses 32 on /media/audio, §4.1), and no msg 5.

import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import express from 'express';
import WebSocket from 'ws';

const MAX_MESSAGE = 4 << 20;          // bytes, as rtms::Client (rtms-ws.h)
const MAX_WEBHOOK = '64kb';           // as bench/ref-receiver
const WINDOW_S = 300;                 // webhook timestamp window, §2.5
const RATES = [8000, 16000, 32000, 48000];   // msg 4 sample_rate enum, §4.2
const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;       // ids that become file names
const ZEROS = Buffer.alloc(64 * 1024);        // bytes of silence per gap write

function usage(msg) {
  if (msg)
    console.error(`receiver.js: ${msg}`);
  console.error('usage: node receiver.js --out DIR [--port N] [--ready-file FILE] [--write stream|sync]');
  process.exit(2);
}

const opts = { out: null, port: 0, ready: null, write: 'stream' };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  const v = process.argv[i + 1];
  if (a === '--out' && v !== undefined) { opts.out = v; i++; }
  else if (a === '--port' && v !== undefined) { opts.port = Number(v); i++; }
  else if (a === '--ready-file' && v !== undefined) { opts.ready = v; i++; }
  else if (a === '--write' && (v === 'stream' || v === 'sync')) { opts.write = v; i++; }
  else usage(`unknown or incomplete argument ${JSON.stringify(a).slice(0, 40)}`);
}
const CLIENT_ID = process.env.ZOOM_APP_CLIENT_ID;
const CLIENT_SECRET = process.env.ZOOM_APP_CLIENT_SECRET;
const SECRET_TOKEN = process.env.ZOOM_SECRET_TOKEN || '';
if (!opts.out || !CLIENT_ID || !CLIENT_SECRET)
  usage('--out and ZOOM_APP_CLIENT_ID/_SECRET are needed');
if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535)
  usage('--port: 0-65535');
fs.mkdirSync(opts.out, { recursive: true });

// rtms_stream_id -> engagement
const engagements = new Map();

// docs/protocol.md §3.2: hex(HMAC-SHA256(client_secret, "client_id,id,rtms_stream_id"))
function signature(idValue, streamId) {
  return crypto.createHmac('sha256', CLIENT_SECRET)
    .update(`${CLIENT_ID},${idValue},${streamId}`).digest('hex');
}

// §2.1 server_urls: a comma-separated string (or an object); the first ws URL
function signalingUrl(serverUrls) {
  if (typeof serverUrls === 'string')
    return serverUrls.split(',').map(s => s.trim()).find(s => /^wss?:\/\//.test(s));
  if (serverUrls && typeof serverUrls === 'object')
    return serverUrls.all || Object.values(serverUrls).find(s => typeof s === 'string' && /^wss?:\/\//.test(s));
  return undefined;
}

function wavHeader(dataBytes, rate) {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);             // PCM
  h.writeUInt16LE(1, 22);             // mono
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 2, 28);
  h.writeUInt16LE(2, 32);             // block align
  h.writeUInt16LE(16, 34);            // bits
  h.write('data', 36);
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

// ---- one WAV per channel ----------------------------------------------------

function openChannel(eng, channelId) {
  const file = path.join(eng.dir, `${channelId}.wav`);
  const ch = { id: channelId, file, firstTs: -1, written: 0, packets: 0, stream: null, fd: -1 };
  if (opts.write === 'stream') {
    // the samples' saveRawAudio(): a write stream per channel, write() per packet
    ch.stream = fs.createWriteStream(file);
    ch.stream.on('error', err => console.error(`receiver.js: ${channelId}.wav: ${err.code}`));
    ch.stream.write(wavHeader(0, eng.rate));
  } else {
    ch.fd = fs.openSync(file, 'w');
    fs.writeSync(ch.fd, wavHeader(0, eng.rate), 0, 44, 0);
  }
  eng.channels.set(channelId, ch);
  return ch;
}

function onAudio(eng, content) {
  if (!content || typeof content.data !== 'string')
    return;
  const channelId = String(content.channel_id ?? content.user_id ?? '');
  const ts = Number(content.timestamp);
  if (!Number.isFinite(ts))
    return;
  let ch = eng.channels.get(channelId);
  if (!ch) {
    if (!ID_RE.test(channelId))
      return;
    ch = openChannel(eng, channelId);
  }
  const pcm = Buffer.from(content.data, 'base64');
  const samples = pcm.length >> 1;
  if (ch.firstTs < 0)
    ch.firstTs = ts;
  const pos = Math.floor((ts - ch.firstTs) * eng.rate / 1000);
  if (pos < ch.written)
    return;                           // duplicate or behind: dropped
  if (ch.stream) {
    // a gap, as zeros: chunks of one shared buffer (memory bounded whatever the jump)
    for (let gap = (pos - ch.written) * 2; gap > 0; gap -= ZEROS.length)
      ch.stream.write(gap >= ZEROS.length ? ZEROS : ZEROS.subarray(0, gap));
    ch.stream.write(samples * 2 === pcm.length ? pcm : pcm.subarray(0, samples * 2));
  } else {
    // at its position: a gap stays a hole, read back as zeros
    fs.writeSync(ch.fd, pcm, 0, samples * 2, 44 + pos * 2);
  }
  ch.written = pos + samples;
  ch.packets++;
  eng.packets++;
}

// ---- engagements ------------------------------------------------------------

// The end of a stream (msg 8 TERMINATED or the stopped webhook) comes on
// another connection than the media, so packets sent before it may still be
// on their way: wait for the media socket to close (the server closes it once
// the stream ended; every message before its close frame has been handled),
// at most DRAIN_MS, then finalize.
const DRAIN_MS = 5000;
function ending(eng, how) {
  if (eng.done || eng.ending)
    return;
  const media = eng.media;
  if (!media || media.readyState === WebSocket.CLOSED) {
    finalize(eng, how);
    return;
  }
  eng.ending = true;
  const timer = setTimeout(() => finalize(eng, how), DRAIN_MS);
  media.once('close', () => {
    clearTimeout(timer);
    finalize(eng, how);
  });
}

function finalize(eng, how) {
  if (eng.done)
    return eng.done;
  for (const ws of [eng.sig, eng.media]) {
    if (ws) {
      ws.removeAllListeners('message');
      ws.on('error', () => {});
      ws.terminate();
    }
  }
  eng.sig = eng.media = null;
  const closeOne = ch => new Promise(resolve => {
    const patch = () => {
      try {
        const fd = fs.openSync(ch.file, 'r+');
        fs.writeSync(fd, wavHeader(ch.written * 2, eng.rate), 0, 44, 0);
        fs.closeSync(fd);
      } catch (err) {
        console.error(`receiver.js: WAV header of ${ch.id}: ${err.code}`);
      }
      resolve();
    };
    if (ch.stream) {
      ch.stream.on('close', patch);
      ch.stream.end();
    } else {
      fs.closeSync(ch.fd);
      patch();
    }
  });
  eng.done = Promise.all([...eng.channels.values()].map(closeOne)).then(() => {
    const channels = {};
    for (const ch of eng.channels.values())
      channels[ch.id] = { packets: ch.packets, samples: ch.written };
    fs.writeFileSync(path.join(eng.dir, 'done.json'), JSON.stringify({
      rtms_stream_id: eng.streamId, packets: eng.packets, how, channels }) + '\n');
  });
  return eng.done;
}

// Every message of one socket, parsed (unparsable ones skipped, as the
// samples do); keep-alive requests (msg 12) are answered with msg 13 on the
// same socket (docs/protocol.md §3.9), the rest go to @handle.
function onMessages(ws, handle) {
  ws.on('message', data => {
    let msg;
    try {
      msg = JSON.parse(data.toString());
    } catch {
      return;
    }
    if (msg.msg_type === 12)
      ws.send(JSON.stringify({ msg_type: 13, timestamp: msg.timestamp }));
    else
      handle(msg);
  });
}

function connectMedia(eng, url) {
  const ws = new WebSocket(url, { maxPayload: MAX_MESSAGE });
  eng.media = ws;
  ws.on('open', () => {
    ws.send(JSON.stringify({
      msg_type: 3, protocol_version: 1, sequence: 0,
      [eng.idKey]: eng.idValue, rtms_stream_id: eng.streamId,
      signature: signature(eng.idValue, eng.streamId),
      media_type: 1, payload_encryption: false,
      media_params: { audio: { content_type: 2, sample_rate: 1, channel: 1, codec: 1, data_opt: 1, send_rate: 20 } },
    }));
  });
  onMessages(ws, msg => {
    switch (msg.msg_type) {
      case 14:
        onAudio(eng, msg.content);
        break;
      case 4:
        if (msg.status_code !== 0) {
          finalize(eng, 'media-refused');
          break;
        }
        if (RATES[msg.media_params?.audio?.sample_rate])
          eng.rate = RATES[msg.media_params.audio.sample_rate];
        eng.sig?.send(JSON.stringify({ msg_type: 7, rtms_stream_id: eng.streamId }));
        break;
      default:
        break;
    }
  });
  ws.on('error', err => console.error(`receiver.js: media WebSocket: ${err.code || 'error'}`));
}

function connectSignaling(eng, url) {
  const ws = new WebSocket(url, { maxPayload: MAX_MESSAGE });
  eng.sig = ws;
  ws.on('open', () => {
    ws.send(JSON.stringify({
      msg_type: 1, protocol_version: 1, sequence: 0,
      [eng.idKey]: eng.idValue, rtms_stream_id: eng.streamId,
      signature: signature(eng.idValue, eng.streamId),
    }));
  });
  onMessages(ws, msg => {
    switch (msg.msg_type) {
      case 2: {
        if (msg.status_code !== 0) {
          finalize(eng, 'signaling-refused');
          break;
        }
        const urls = msg.media_server?.server_urls || {};
        const media = urls.audio || urls.all;
        if (typeof media !== 'string' || !/^wss?:\/\//.test(media)) {
          finalize(eng, 'no-media-url');
          break;
        }
        connectMedia(eng, media);
        break;
      }
      case 8:
        if (msg.state === 4)          // TERMINATED, §3.8
          ending(eng, 'msg8');
        break;
      default:
        break;
    }
  });
  ws.on('error', err => console.error(`receiver.js: signaling WebSocket: ${err.code || 'error'}`));
}

function onStarted(payload) {
  const idKey = ['engagement_id', 'meeting_uuid'].find(k => typeof payload?.[k] === 'string');
  const streamId = payload?.rtms_stream_id;
  const url = signalingUrl(payload?.server_urls);
  if (!idKey || typeof streamId !== 'string' || !ID_RE.test(streamId) || !url)
    return;
  if (engagements.has(streamId))
    return;                           // a duplicate start: a no-op
  const eng = {
    idKey, idValue: payload[idKey], streamId, dir: path.join(opts.out, streamId),
    rate: 16000, channels: new Map(), packets: 0, sig: null, media: null,
    ending: false, done: null,
  };
  fs.mkdirSync(eng.dir, { recursive: true });
  engagements.set(streamId, eng);
  connectSignaling(eng, url);
}

// ---- webhooks ---------------------------------------------------------------

// §2.5: v0= hex(HMAC-SHA256(secret token, "v0:" + timestamp + ":" + raw body))
function verified(req) {
  if (!SECRET_TOKEN)
    return true;
  const ts = req.get('x-zm-request-timestamp');
  const sig = req.get('x-zm-signature');
  if (!ts || !sig || !/^\d{1,12}$/.test(ts) || !req.rawBody)
    return false;
  if (Math.abs(Date.now() / 1000 - Number(ts)) > WINDOW_S)
    return false;
  const want = Buffer.from('v0=' + crypto.createHmac('sha256', SECRET_TOKEN)
    .update(`v0:${ts}:`).update(req.rawBody).digest('hex'));
  const got = Buffer.from(sig);
  return got.length === want.length && crypto.timingSafeEqual(got, want);
}

const app = express();
app.use(express.json({ limit: MAX_WEBHOOK, verify: (req, res, buf) => { req.rawBody = buf; } }));

app.post(['/', '/webhook'], (req, res) => {
  if (!verified(req))
    return res.status(401).json({ error: 'Invalid webhook signature' });
  const { event, payload } = req.body || {};
  if (event === 'endpoint.url_validation') {
    const plainToken = payload?.plainToken;
    if (typeof plainToken !== 'string' || !SECRET_TOKEN)
      return res.status(400).json({ error: 'no plainToken or no secret token' });
    return res.status(200).json({
      plainToken,
      encryptedToken: crypto.createHmac('sha256', SECRET_TOKEN).update(plainToken).digest('hex'),
    });
  }
  res.status(200).json({ received: true });   // acknowledge first, work afterwards (§2.6)
  if (event === 'contact_center.voice_rtms_started' || event === 'meeting.rtms_started') {
    onStarted(payload);
  } else if (event === 'contact_center.voice_rtms_stopped' || event === 'meeting.rtms_stopped') {
    const eng = engagements.get(payload?.rtms_stream_id);
    if (eng)
      ending(eng, 'stopped-webhook');
  }
});

app.use((err, req, res, next) => {
  // express.json's errors (too large, malformed): a status, nothing logged
  res.status(err.status && err.status < 500 ? err.status : 400).json({ error: 'bad request' });
});

const server = app.listen(opts.port, '127.0.0.1', () => {
  if (opts.ready)
    fs.writeFileSync(opts.ready, JSON.stringify({ port: server.address().port }) + '\n');
});
server.on('error', err => {
  console.error(`receiver.js: listen: ${err.code}`);
  process.exit(2);
});

let stopping = false;
function shutdown() {
  if (stopping)
    return;
  stopping = true;
  server.close();
  const all = [...engagements.values()].map(e => finalize(e, 'sigterm'));
  const timer = setTimeout(() => process.exit(1), 30000);
  Promise.all(all).then(() => {
    clearTimeout(timer);
    process.exit(0);
  });
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
