// The page: wires the library, the upload, the stream and the controls together.
//
// The buttons' `disabled` state is the UI's state machine: Start needs the server's hello, a
// selected series and no stream; Stop needs a stream. Every control change goes through one
// throttled update queue while a stream runs; before that, the controls' values are the state
// the next stream starts with.

import { deleteSeries, listSeries } from "./api.js";
import { adoptTokenFromUrl } from "./auth.js";
import { ParamsPanel } from "./controls.js";
import { FramePairing } from "./frames.js";
import { LibraryView, framesText, seriesName } from "./library.js";
import { PlaybackControls } from "./playback.js";
import { Readout } from "./readout.js";
import { SegmentationsPanel } from "./segmentations.js";
import { Signalling } from "./signalling.js";
import { StreamSession } from "./stream.js";
import { UpdateQueue } from "./updates.js";
import { Uploader } from "./upload.js";
import { VideoView } from "./video.js";

adoptTokenFromUrl(); // before any request: they carry it (README "Security")

const PROTOCOL = 1; // docs/protocol.md
const $ = (selector) => document.querySelector(selector);
// Opened from a "Share" link (?view=<token>): watch that stream, read-only.
const viewToken = new URLSearchParams(location.search).get("view");

const connection = $("#connection");
const connectionText = $("#connection-text");
const startButton = $("#start");
const stopButton = $("#stop");
const shareButton = $("#share");
const shareStatus = $("#share-status");
const shareText = $("#share-text");
const shareLink = $("#share-link");
const shareViewers = $("#share-viewers");
const unshareButton = $("#unshare");
const streamSeries = $("#stream-series");
const streamError = $("#stream-error");
const appliedState = $("#applied-state");
const readoutRoot = $("#readout");

const library = new LibraryView({ list: $("#series-list"), status: $("#library-status") });
const uploader = new Uploader({
  dropZone: $("#drop-zone"),
  fileInput: $("#file-input"),
  folderInput: $("#folder-input"),
  chooseFiles: $("#choose-files"),
  chooseFolder: $("#choose-folder"),
  progress: $("#upload-progress"),
  bar: $("#upload-bar"),
  label: $("#upload-label"),
  bytes: $("#upload-bytes"),
  cancel: $("#upload-cancel"),
  result: $("#upload-result"),
  summary: $("#upload-summary"),
  details: $("#upload-details"),
  list: $("#upload-files"),
});
const params = new ParamsPanel({
  select: $("#algorithm"),
  description: $("#algorithm-description"),
  error: $("#algorithm-error"),
  container: $("#params"),
});
const playback = new PlaybackControls({
  play: $("#play"),
  prev: $("#slice-prev"),
  next: $("#slice-next"),
  slice: $("#slice"),
  sliceLabel: $("#slice-label"),
  delayRange: $("#image-delay-range"),
  delayNumber: $("#image-delay"),
  delayError: $("#image-delay-error"),
  preset: $("#window-preset"),
  center: $("#window-center"),
  width: $("#window-width"),
  windowError: $("#window-error"),
  windowApplied: $("#window-applied"),
});
const videoView = new VideoView({
  frame: $("#video-frame"),
  video: $("#video"),
  ring: $("#placement-ring"),
  placeholder: $("#video-placeholder"),
  hint: $("#placement-hint"),
});
const readout = new Readout({
  root: readoutRoot,
  slice: $("#readout-slice"),
  stage: $("#readout-stage"),
  time: $("#readout-time"),
  stats: $("#readout-stats"),
  latency: $("#readout-latency"),
});

const segmentations = new SegmentationsPanel({
  run: $("#segment-series"),
  save: $("#save-seg"),
  label: $("#segment-label"),
  progress: $("#segment-progress"),
  result: $("#segment-result"),
  error: $("#segment-error"),
  list: $("#segmentation-list"),
  heading: $("#segmentations-heading"),
  status: $("#segmentations-status"),
});
const trackBox = $("#track");

const signalling = new Signalling();
const session = new StreamSession(signalling);
const pairing = new FramePairing();
const updates = new UpdateQueue(sendUpdate);

let hello = null;
let applied = null; // the server's stream state, from its latest `state` reply
let rtpTimestamps = true; // false if this browser's frame callbacks lack rtpTimestamp

// -- state machine -------------------------------------------------------------------------

const STATE_TEXT = {
  idle: () => "Ready",
  connecting: (reason) => reason || "Connecting…",
  streaming: () => "Streaming",
  stopping: () => "Stopping…",
  stopped: (reason) => `Stopped — ${reason}`,
  failed: (reason) => `Failed — ${reason}`,
};

function showConnection(state, text) {
  connection.dataset.state = state;
  connectionText.textContent = text;
}

function updateButtons() {
  const busy = session.isActive || session.state === "stopping";
  startButton.disabled = !hello || (!library.selected && !viewToken) || busy;
  stopButton.disabled = !session.isActive;
  shareButton.disabled = viewToken !== null || session.state !== "streaming";
  if (!session.isActive) shareStatus.hidden = true;
}

function showStreamError(message) {
  streamError.textContent = message;
  streamError.hidden = !message;
}

session.addEventListener("statechange", (event) => {
  const { state, reason } = event.detail;
  showConnection(state, STATE_TEXT[state](reason));
  if (state === "stopped" || state === "failed") {
    updates.hold();
    updates.clear();
    videoView.detach(STATE_TEXT[state](reason));
  }
  updatePlacement();
  updateButtons();
});

// -- starting and stopping -----------------------------------------------------------------

/** The state a new stream starts in, from the controls. */
function initialState(series) {
  const state = {
    series: series.series_uid,
    algorithm: params.algorithm,
    ...playback.initialState(),
    track: trackBox.checked,
    seg: segmentations.shown,
  };
  // After a stream of this series and algorithm the controls hold the server's applied values;
  // otherwise only what the person changed (the server adapts its defaults to the image).
  const continuing =
    applied?.series === series.series_uid && applied?.algorithm === params.algorithm;
  const values = params.values({ touchedOnly: !continuing });
  if (Object.keys(values).length) state.params = values;
  return state;
}

startButton.addEventListener("click", async () => {
  if (viewToken) {
    await startViewing(); // watch the shared stream (again, after it stopped)
    return;
  }
  const series = library.selected;
  if (!series) return;
  showStreamError("");
  params.clearErrors();
  playback.clearErrors();
  pairing.reset();
  readout.clear();
  updates.hold();
  updates.clear();
  videoView.showMessage("Connecting…");
  await session.start(initialState(series));
});

// -- sharing ---------------------------------------------------------------------------------

function watchingText(count) {
  return `${count} watching`;
}

shareButton.addEventListener("click", () => session.share());
unshareButton.addEventListener("click", () => session.unshare());

session.addEventListener("shared", async (event) => {
  const { url, viewers } = event.detail;
  const link = new URL(url, location.href).href; // relative to this page
  shareLink.value = link;
  shareViewers.value = watchingText(viewers ?? 0);
  shareStatus.hidden = false;
  try {
    await navigator.clipboard.writeText(link);
    shareText.textContent = "Link copied:";
  } catch {
    shareText.textContent = "Copy this link:"; // no clipboard access (permissions, http)
    shareLink.select();
  }
});
session.addEventListener("viewers", (event) => {
  shareViewers.value = watchingText(event.detail.count);
});
session.addEventListener("unshared", () => {
  shareStatus.hidden = true;
});

async function startViewing() {
  pairing.reset();
  readout.clear();
  videoView.showMessage("Joining the shared session…");
  await session.start(null, { viewToken });
}

stopButton.addEventListener("click", async () => {
  await session.stop();
});


session.addEventListener("answered", () => updates.release());
session.addEventListener("track", (event) => videoView.attach(event.detail));

// -- updates and their replies -------------------------------------------------------------

// Input → picture latency: when the first input merged into the next update happened, and
// for each update sent (by seq) that time, until a painted frame reflects it.
let inputAt = null;
const inputTimes = new Map();

function pushUpdate(changes) {
  if (!session.isActive || viewToken) return; // a viewer never steers
  inputAt ??= performance.now();
  updates.push(changes);
}

function sendUpdate(changes) {
  try {
    session.update(changes);
    if (inputAt !== null) inputTimes.set(session.seq, inputAt);
  } catch (error) {
    showStreamError(`The change could not be sent: ${error.message}`);
  }
  inputAt = null;
}

/** A frame reflecting update `seq` was painted at `paintedAt`: report the first one's delay. */
function measureLatency(seq, paintedAt) {
  if (seq === null || seq === undefined) return;
  for (const [sent, at] of inputTimes) {
    if (sent > seq) continue;
    inputTimes.delete(sent);
    if (sent === seq) readout.showLatency(paintedAt - at, seq);
  }
}

session.addEventListener("applied", (event) => {
  const { seq, state, changes } = event.detail;
  applied = state;
  appliedState.textContent = JSON.stringify(state, null, 2);
  appliedState.dataset.seq = seq;
  // Move the inputs to the server's values only when no newer change is on its way: otherwise
  // a slider would jump back under the pointer to a value the person has already left.
  const sync = viewToken !== null || (seq === session.seq && !updates.hasPending);
  params.showApplied(state.algorithm, state.params, { sync });
  playback.showApplied(state, { sync });
  if (sync) trackBox.checked = Boolean(state.track);
  params.clearErrors(Object.keys(changes.params ?? {}));
  if ("algorithm" in changes) params.clearErrors();
  playback.clearErrors(Object.keys(changes).filter((k) => k === "image_delay" || k === "window"));
  updatePlacement();
});

session.addEventListener("rejected", (event) => {
  const { changes, detail } = event.detail;
  const placed = new Set();
  if (changes.params) {
    params.showError(Object.keys(changes.params), detail);
    placed.add("params");
  }
  if ("algorithm" in changes) {
    params.showError([], detail);
    placed.add("algorithm");
  }
  for (const field of Object.keys(changes)) {
    if (!placed.has(field) && !playback.showError(field, detail)) showStreamError(detail);
  }
});

// While the library (a PACS) cannot be reached the last picture stays and is sent again; a
// frame of another slice means the stream has resumed, so the notice goes.
let lastFrameIndex = null;
let outageIndex = null;

session.addEventListener("notice", (event) => {
  outageIndex = event.detail.error === "library_unavailable" ? lastFrameIndex : null;
  showStreamError(event.detail.detail || event.detail.error);
});

// -- frames ----------------------------------------------------------------------------------

function showFrame(message) {
  readout.show(message);
  playback.showFrame(message);
}

session.addEventListener("frame", (event) => {
  const message = event.detail;
  if (outageIndex !== null && message.index !== outageIndex) {
    outageIndex = null;
    showStreamError("");
  }
  lastFrameIndex = message.index;
  readoutRoot.dataset.lastMessageSeq = message.seq ?? "";
  if (!rtpTimestamps) {
    showFrame(message); // no way to pair: show the newest description
    return;
  }
  const late = pairing.add(message);
  if (late) showFrame(late);
});

videoView.addEventListener("present", (event) => {
  const { rtpTimestamp, presentedFrames } = event.detail;
  if (rtpTimestamp === undefined) {
    rtpTimestamps = false;
    return;
  }
  const message = pairing.present(rtpTimestamp, presentedFrames);
  if (message) {
    showFrame(message);
    measureLatency(message.seq, event.detail.now ?? performance.now());
  }
});

// -- controls --------------------------------------------------------------------------------

// The parameter a drag on the image sets, for each click algorithm's seed (x, y): a radius is
// the distance dragged, in image pixels; a tolerance grows by one step per CSS pixel dragged.
const DRAG_PARAMS = { radius: "px", tolerance: "steps" };

function updatePlacement() {
  segmentations.setRunnable(!viewToken && params.hasParam("x") && params.hasParam("y"));
  const values = params.values();
  const name = Object.keys(DRAG_PARAMS).find((param) => params.hasParam(param));
  const spec = name ? params.spec(name) : null;
  videoView.setPlacement({
    enabled: session.isActive && !viewToken && params.hasParam("x") && params.hasParam("y"),
    drag: spec && {
      name,
      unit: DRAG_PARAMS[name],
      step: spec.step || 1,
      min: spec.min,
      max: params.max(name),
      value: values[name],
    },
    x: values.x ?? 0,
    y: values.y ?? 0,
  });
}

params.addEventListener("change", (event) => {
  pushUpdate(event.detail);
  updatePlacement();
});
params.addEventListener("rebuilt", updatePlacement);
playback.addEventListener("change", (event) => pushUpdate(event.detail));
videoView.addEventListener("place", (event) => params.setParams(event.detail));
trackBox.addEventListener("change", () => pushUpdate({ track: trackBox.checked }));
segmentations.addEventListener("show", (event) => pushUpdate({ seg: event.detail }));
segmentations.run.addEventListener("click", () => {
  // The click as the controls hold it, on the slice shown (the slider before a stream).
  const streamed = applied?.series === library.selected?.series_uid;
  const index = streamed ? applied.index : Number($("#slice").value);
  segmentations.segment({ algorithm: params.algorithm, params: params.values(), index });
});
videoView.addEventListener("drag", (event) => params.setParams(event.detail));

// -- library and upload ----------------------------------------------------------------------

function selectSeries(series, byUser) {
  const size = series ? `${series.columns}×${series.rows}` : "";
  streamSeries.textContent = series
    ? `${series.modality || "?"} · ${seriesName(series)} — ${framesText(series)}, ${size}`
    : "No series selected.";
  playback.setEnabled(Boolean(series));
  segmentations.setSeries(series);
  if (series) {
    readout.setValueUnit(series.modality === "CT" ? "HU" : "");
    videoView.setImageSize(series);
    params.setImageSize(series);
    playback.setSeries(series);
    // Switch the running stream only when the person picked another series; it starts at
    // slice 0 in the new series' default window, with image coordinates clamped to it.
    if (byUser && session.isActive && applied && applied.series !== series.series_uid) {
      const changes = { series: series.series_uid, window: null };
      const values = params.values();
      const clamped = Object.fromEntries(
        ["x", "y", "radius", "radius_y"].filter((k) => k in values).map((k) => [k, values[k]]),
      );
      if (Object.keys(clamped).length) changes.params = clamped;
      pushUpdate(changes);
    }
  }
  updatePlacement();
  updateButtons();
}

library.addEventListener("select", (event) =>
  selectSeries(event.detail.series, event.detail.byUser),
);

async function refreshLibrary(preferUid = null) {
  try {
    library.render(await listSeries(), preferUid);
  } catch (error) {
    library.showStatus(`The library could not be loaded: ${error.message}`);
  }
  updateButtons();
}

library.addEventListener("delete", async (event) => {
  const series = event.detail;
  const question =
    `Delete “${seriesName(series)}” (${framesText(series)}) from the server? ` +
    "This cannot be undone.";
  if (!window.confirm(question)) return;
  try {
    await deleteSeries(series.series_uid);
  } catch (error) {
    library.showStatus(`The series could not be deleted: ${error.message}`);
    return;
  }
  await refreshLibrary();
});

uploader.addEventListener("uploaded", async (event) => {
  // Show the newest stored series, unless a stream is running (do not pull the list from under it).
  const stored = event.detail.filter((f) => f.series_uid && f.outcome !== "rejected");
  await refreshLibrary(session.isActive ? null : (stored.at(-1)?.series_uid ?? null));
  await segmentations.refresh(); // an uploaded DICOM SEG is listed with its series
});

// -- start-up --------------------------------------------------------------------------------

signalling.addEventListener("close", () => {
  if (!session.isActive && session.state !== "stopping") {
    showConnection("idle", "Disconnected from the server; Start reconnects.");
  }
});

async function connect() {
  try {
    hello = await signalling.open();
    params.setSchemas(hello.algorithms);
    showConnection("idle", STATE_TEXT.idle());
    if (hello.protocol !== PROTOCOL) {
      showStreamError(
        `This page speaks protocol ${PROTOCOL}; the server speaks ${hello.protocol}.`,
      );
    }
  } catch (error) {
    showConnection("failed", `The server cannot be reached: ${error.message}`);
  }
  updateButtons();
}

playback.setEnabled(false);
if (viewToken) {
  // Read-only: every control stays visible and follows the presenter's, but none can be used.
  $("#viewing-banner").hidden = false;
  for (const group of document.querySelectorAll(".panel-controls fieldset")) group.disabled = true;
}
await Promise.all([refreshLibrary(), connect()]);
if (viewToken && hello) await startViewing();
