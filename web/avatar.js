// The interviewer's face: a calm 2D face in SVG whose mouth follows the voice's visemes (`avatar.visemes`), and
// which blinks now and then. Frames carry times from the utterance's start; the first frames of an utterance
// arrive as its first audio is queued, so that moment plus the playout delay is the utterance's time zero.

// Mouth shape per viseme: width, opening (px in a 200x200 face) and roundness (0: flat, 1: round).
const MOUTHS = {
  sil: [40, 2, 0], PP: [36, 0, 0], FF: [42, 5, 0], TH: [42, 7, 0], DD: [44, 9, 0], kk: [42, 11, 0],
  CH: [34, 10, 0.5], SS: [46, 5, 0], nn: [42, 7, 0], RR: [32, 10, 0.6], aa: [46, 22, 0.2], E: [48, 14, 0],
  I: [50, 9, 0], O: [30, 18, 1], U: [24, 12, 1],
};

class Avatar {
  constructor(container) {
    const ns = "http://www.w3.org/2000/svg";
    const node = (tag, attrs) => {
      const n = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
      return n;
    };
    this.svg = node("svg", { viewBox: "0 0 200 200", class: "avatar-face", "aria-hidden": "true" });
    this.svg.append(
      node("circle", { cx: 100, cy: 100, r: 96, class: "avatar-bg" }),
      node("path", { d: "M30 92 C30 30 170 30 170 92 C170 60 140 44 100 44 C60 44 30 60 30 92 Z", class: "avatar-hair" }),
      node("ellipse", { cx: 100, cy: 108, rx: 62, ry: 72, class: "avatar-skin" }),
      node("path", { d: "M58 84 q14 -8 28 0", class: "avatar-brow" }),
      node("path", { d: "M114 84 q14 -8 28 0", class: "avatar-brow" }),
    );
    this.eyes = [node("ellipse", { cx: 72, cy: 100, rx: 7, ry: 7, class: "avatar-eye" }), node("ellipse", { cx: 128, cy: 100, rx: 7, ry: 7, class: "avatar-eye" })];
    this.svg.append(...this.eyes, node("path", { d: "M100 108 q-6 18 2 22", class: "avatar-nose" }));
    this.mouth = node("path", { class: "avatar-mouth" });
    this.svg.append(this.mouth);
    container.append(this.svg);
    this.frames = [];
    this.origin = null;
    this.utterance = null;
    this.playoutMs = 60;
    this.applied = 0;
    this.viseme = "sil";
    this.draw("sil");
    this.blink();
    requestAnimationFrame(() => this.tick());
  }

  // Mouth as two lip curves around (100, 150): flat shapes are wide and thin, round ones narrow and tall.
  draw(viseme) {
    const [width, open, round] = MOUTHS[viseme] || MOUTHS.sil;
    const half = width / 2;
    const bulge = open / 2 + round * 3;
    const d = `M${100 - half} 150 Q100 ${150 - bulge - 2} ${100 + half} 150 Q100 ${150 + bulge + 4} ${100 - half} 150 Z`;
    this.mouth.setAttribute("d", d);
    this.mouth.classList.toggle("open", open > 4);
  }

  // An utterance's viseme frames (a sentence at a time); the first set fixes its time zero.
  add(utteranceId, frames) {
    if (utteranceId !== this.utterance) {
      this.utterance = utteranceId;
      this.frames = [];
      this.origin = performance.now() + this.playoutMs;
    }
    this.frames.push(...frames);
    this.frames.sort((a, b) => a.t_ms - b.t_ms);
  }

  stop(utteranceId) {
    if (utteranceId && utteranceId !== this.utterance) return;
    this.frames = [];
    this.utterance = null;
    this.set("sil");
  }

  set(viseme) {
    if (viseme === this.viseme) return;
    this.viseme = viseme;
    this.applied += 1;
    this.draw(viseme);
  }

  tick() {
    if (this.utterance && this.frames.length) {
      const at = performance.now() - this.origin;
      let current = "sil";
      for (const frame of this.frames) { if (frame.t_ms <= at) current = frame.viseme; else break; }
      const last = this.frames[this.frames.length - 1];
      this.set(at > last.t_ms + 400 ? "sil" : current);
    }
    requestAnimationFrame(() => this.tick());
  }

  blink() {
    setTimeout(() => {
      for (const eye of this.eyes) eye.setAttribute("ry", 1);
      setTimeout(() => { for (const eye of this.eyes) eye.setAttribute("ry", 7); this.blink(); }, 140);
    }, 2500 + Math.random() * 3500);
  }
}
