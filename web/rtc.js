// Candor protocol v1 over WebRTC: signaling on the WebSocket, one peer connection, the "events" data channel.
// Used by the interview room (candidate: sends mic + camera, hears the interviewer) and the observer view.

class LiveSession {
  constructor({ interviewId, role, localStream, onEvent, onTrack, onState, onError }) {
    Object.assign(this, { interviewId, role, localStream, onEvent, onTrack, onState, onError });
    this.events = [];
  }

  async start() {
    const { ice_servers } = await api("GET", "/rtc/config");
    this.pc = new RTCPeerConnection({ iceServers: ice_servers });
    if (this.role === "candidate") {
      for (const track of this.localStream.getAudioTracks()) this.pc.addTransceiver(track, { direction: "sendrecv" });
      for (const track of this.localStream.getVideoTracks()) this.pc.addTransceiver(track, { direction: "sendonly" });
    } else {
      this.pc.addTransceiver("audio", { direction: "recvonly" });
      this.pc.addTransceiver("audio", { direction: "recvonly" });
      this.pc.addTransceiver("video", { direction: "recvonly" });
    }
    this.channel = this.pc.createDataChannel("events", { ordered: true });
    this.channel.onmessage = (m) => {
      let event;
      try { event = JSON.parse(m.data); } catch { return; }
      this.events.push(event);
      this.onEvent?.(event);
    };
    this.pc.ontrack = (e) => this.onTrack?.(e);
    this.pc.onconnectionstatechange = () => this.onState?.(this.pc.connectionState);

    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const query = new URLSearchParams({ access_token: store.access, role: this.role });
    this.ws = new WebSocket(`${scheme}://${location.host}/api/v1/interviews/${this.interviewId}/rtc?${query}`);
    this.pc.onicecandidate = (e) => {
      if (e.candidate && this.ws.readyState === WebSocket.OPEN) {
        this.ws.send(JSON.stringify({ type: "candidate", candidate: e.candidate.toJSON() }));
      }
    };
    this.ws.onmessage = async (m) => {
      const message = JSON.parse(m.data);
      if (message.type === "answer") await this.pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
      else if (message.type === "candidate" && message.candidate.candidate) await this.pc.addIceCandidate(message.candidate).catch(() => {});
      else if (message.type === "error") this.onError?.(message);
      else if (message.type === "ended") { this.ended = true; this.onState?.("ended", message.reason); }
    };
    await new Promise((resolve, reject) => { this.ws.onopen = resolve; this.ws.onerror = () => reject(new Error("the server could not be reached")); });
    // Signaling closed by the network rather than by an end: the page offers to reconnect.
    this.ws.onclose = () => { if (!this.ending && !this.ended) this.onState?.("signaling_lost"); };
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);
    this.ws.send(JSON.stringify({ type: "offer", sdp: offer.sdp }));
  }

  send(message) {
    if (this.channel?.readyState === "open") this.channel.send(JSON.stringify({ v: 1, ...message }));
  }

  end() {
    this.ending = true;
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: "end" }));
    setTimeout(() => this.close(), 200);
  }

  // Drops the connection without ending the interview (before reconnecting).
  close() {
    this.ending = true;
    this.pc?.close();
    this.ws?.close();
  }

  // The connection as the candidate experiences it, from getStats(): round trip (s), the share of incoming audio
  // lost since the last call, jitter (s), the audio playout delay (s) and a verdict: good, fair or poor.
  async quality() {
    if (!this.pc) return null;
    const stats = await this.pc.getStats();
    let rtt = null, audio = null;
    stats.forEach((s) => {
      if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded" && s.currentRoundTripTime != null) rtt = s.currentRoundTripTime;
      if (s.type === "inbound-rtp" && s.kind === "audio") audio = s;
    });
    let loss = 0, jitter = null, playout = null;
    if (audio) {
      const before = this.lastAudio || { packetsLost: 0, packetsReceived: 0 };
      const lost = audio.packetsLost - before.packetsLost;
      const total = lost + audio.packetsReceived - before.packetsReceived;
      loss = total > 0 ? Math.max(0, lost) / total : 0;
      this.lastAudio = { packetsLost: audio.packetsLost, packetsReceived: audio.packetsReceived };
      jitter = audio.jitter ?? null;
      if (audio.jitterBufferEmittedCount) playout = audio.jitterBufferDelay / audio.jitterBufferEmittedCount;
    }
    const verdict = rtt == null && !audio ? "unknown"
      : (rtt ?? 0) < 0.25 && loss < 0.02 && (jitter ?? 0) < 0.03 ? "good"
      : (rtt ?? 0) < 0.5 && loss < 0.08 ? "fair" : "poor";
    return { rtt, loss, jitter, playout, verdict };
  }

  // Packets received per media kind, from getStats().
  async received() {
    const counts = { audio: 0, video: 0 };
    if (!this.pc) return counts;
    (await this.pc.getStats()).forEach((s) => { if (s.type === "inbound-rtp") counts[s.kind] += s.packetsReceived; });
    return counts;
  }
}
