-- AlterTable
ALTER TABLE "ResourceServer" ADD COLUMN     "scopeDescriptions" TEXT NOT NULL DEFAULT '{}';
