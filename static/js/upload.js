// Uploading DICOM files: a file picker, a folder picker and drag-and-drop (folders included),
// one POST /images per batch with a progress bar, then the server's outcome for every file.

import { ApiError, uploadFiles } from "./api.js";
import { formatBytes } from "./format.js";

const OUTCOME_TEXT = { stored: "stored", already_stored: "already stored", rejected: "rejected" };
const MAX_LISTED = 500; // a large folder's list stays usable; the summary counts everything

/** Read a dropped folder recursively (the File System Entry API; all browsers have it). */
async function collectEntry(entry, into) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    into.push({ file, name: entry.fullPath.replace(/^\//, "") });
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    // readEntries returns a batch at a time (100 in Chromium) until it returns none.
    for (;;) {
      const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
      if (!batch.length) break;
      for (const child of batch) await collectEntry(child, into);
    }
  }
}

async function filesFromDrop(dataTransfer) {
  // Entries must be taken synchronously, while the drop event is being handled.
  const entries = [...dataTransfer.items]
    .filter((item) => item.kind === "file")
    .map((item) => item.webkitGetAsEntry?.())
    .filter(Boolean);
  if (!entries.length) return [...dataTransfer.files].map((file) => ({ file, name: file.name }));
  const files = [];
  for (const entry of entries) await collectEntry(entry, files);
  return files;
}

/** Events: "uploaded" (detail: the server's list of files and outcomes) after every upload. */
export class Uploader extends EventTarget {
  constructor(elements) {
    super();
    Object.assign(this, elements);
    this.current = null; // the upload in progress: {abort}

    this.chooseFiles.addEventListener("click", () => this.fileInput.click());
    this.chooseFolder.addEventListener("click", () => this.folderInput.click());
    for (const input of [this.fileInput, this.folderInput]) {
      input.addEventListener("change", () => {
        const files = [...input.files].map((file) => ({
          file,
          name: file.webkitRelativePath || file.name,
        }));
        input.value = ""; // picking the same files again must fire "change" again
        this.upload(files);
      });
    }
    this.cancel.addEventListener("click", () => this.current?.abort());

    this.dropZone.addEventListener("dragover", (event) => {
      event.preventDefault(); // allow dropping
      event.dataTransfer.dropEffect = "copy";
      this.dropZone.classList.add("dragging");
    });
    this.dropZone.addEventListener("dragleave", () => this.dropZone.classList.remove("dragging"));
    this.dropZone.addEventListener("drop", async (event) => {
      event.preventDefault();
      this.dropZone.classList.remove("dragging");
      try {
        this.upload(await filesFromDrop(event.dataTransfer));
      } catch (error) {
        this.#showFailure(`The dropped items could not be read: ${error.message}`);
      }
    });
  }

  async upload(files) {
    if (!files.length || this.current) return;
    const total = files.reduce((sum, { file }) => sum + file.size, 0);
    const count = `${files.length} file${files.length === 1 ? "" : "s"}`;
    this.#setBusy(true);
    this.label.textContent = `Uploading ${count}`;
    this.#progress(0, total);
    this.result.hidden = true;
    try {
      this.current = uploadFiles(files, (sent, sum) => this.#progress(sent, sum));
      const body = await this.current.done;
      this.#progress(total, total);
      this.label.textContent = `Uploaded ${count}`;
      this.#showOutcomes(body.files, null);
      this.dispatchEvent(new CustomEvent("uploaded", { detail: body.files }));
    } catch (error) {
      if (error.name === "AbortError") {
        this.label.textContent = `Upload of ${count} cancelled`;
        this.#showFailure("Files the server had stored before the cancel stay in the library.");
        this.dispatchEvent(new CustomEvent("uploaded", { detail: [] }));
      } else if (error instanceof ApiError && Array.isArray(error.body.files)) {
        // 422 (nothing valid) and 413 (too large) still report what happened to each file.
        this.label.textContent = `Uploaded ${count}`;
        this.#showOutcomes(error.body.files, error.message);
        this.dispatchEvent(new CustomEvent("uploaded", { detail: error.body.files }));
      } else {
        this.label.textContent = `Upload of ${count} failed`;
        this.#showFailure(error.message);
      }
    } finally {
      this.current = null;
      this.#setBusy(false);
    }
  }

  #setBusy(busy) {
    this.chooseFiles.disabled = busy;
    this.chooseFolder.disabled = busy;
    this.cancel.hidden = !busy;
    if (busy) this.progress.hidden = false; // and it stays, showing how the last upload went
  }

  #progress(sent, total) {
    this.bar.max = Math.max(total, 1);
    this.bar.value = sent;
    this.bytes.textContent = `${formatBytes(sent)} / ${formatBytes(total)}`;
  }

  #showFailure(message) {
    this.result.hidden = false;
    this.summary.textContent = message;
    this.summary.className = "error";
    this.list.replaceChildren();
    this.details.hidden = true;
  }

  #showOutcomes(files, errorMessage) {
    const counts = { stored: 0, already_stored: 0, rejected: 0 };
    for (const file of files) counts[file.outcome] = (counts[file.outcome] ?? 0) + 1;
    const parts = Object.entries(OUTCOME_TEXT)
      .filter(([outcome]) => counts[outcome])
      .map(([outcome, text]) => `${counts[outcome]} ${text}`);
    this.result.hidden = false;
    this.summary.textContent = [errorMessage, parts.join(", ")].filter(Boolean).join(" ");
    this.summary.className = errorMessage ? "error" : "";
    this.summary.dataset.stored = counts.stored;
    this.summary.dataset.alreadyStored = counts.already_stored;
    this.summary.dataset.rejected = counts.rejected;

    // Rejected files first: they are what a person needs to look at.
    const ordered = [...files].sort(
      (a, b) => (b.outcome === "rejected") - (a.outcome === "rejected"),
    );
    this.list.replaceChildren(
      ...ordered.slice(0, MAX_LISTED).map((file) => {
        const item = document.createElement("li");
        item.dataset.outcome = file.outcome;
        const name = document.createElement("span");
        name.className = "filename";
        name.textContent = file.filename || "(no name)";
        const outcome = document.createElement("span");
        outcome.className = "outcome";
        outcome.textContent = OUTCOME_TEXT[file.outcome] ?? file.outcome;
        item.append(name, " — ", outcome);
        if (file.reason) item.append(`: ${file.reason}`);
        return item;
      }),
    );
    if (files.length > MAX_LISTED) {
      const more = document.createElement("li");
      more.textContent = `… and ${files.length - MAX_LISTED} more`;
      this.list.append(more);
    }
    this.details.hidden = !files.length;
    this.details.open = counts.rejected > 0;
  }
}
