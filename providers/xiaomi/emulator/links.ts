// Download links handed out by /gallery/storage and the JSONP hop. They expire; an expired link
// is answered as one whether it is kept or not, so the map holds only the last TTL's links.

export interface Link {
  itemId: string;
  expiresAt: number;
  meta: string;
  /** The JSONP function name: /gallery/storage's `callBack`, else dl_img_cb. */
  callback: string;
}

export class Links {
  private readonly links = new Map<string, Link>();

  /** Links live equally long, so the oldest come first: forgetting stops at the first live one. */
  add(id: string, link: Link): void {
    const now = Date.now();
    for (const [k, l] of this.links) {
      if (l.expiresAt >= now) break;
      this.links.delete(k);
    }
    this.links.set(id, link);
  }

  get(id: string): Link | undefined {
    return this.links.get(id);
  }

  delete(id: string): void {
    this.links.delete(id);
  }
}
