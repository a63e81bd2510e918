// Runs once before any test worker starts.
export default function setup(): void {
  process.env.GALLERY_BRIDGE_BACKOFF_SCALE = '0.01';
}
